"""CSV records with every physical line accounted for: a stray quote quarantines its own line, not the file.

A stray quote makes a CSV parser read on across line ends up to the next quote, so one bad line can swallow
hundreds of rows into a single field (or, with no closing quote, the rest of the file) without any error.
Here Python's csv runs in strict mode and is restarted after each bad record. A record is rejected - only
its first physical line is quarantined, and parsing resumes on the next line - when

- csv itself fails on it (text after a closing quote, end of file inside quotes, a NUL byte, a field over
  the size limit);
- it has another number of fields than the header;
- it spans several lines and one of its continuation lines is, read on its own, a complete row. A legitimate
  multi-line quoted field (a description with paragraphs) does not look like that; swallowed rows do.

The caller then reconciles against the physical lines (:func:`unaccounted_lines`): each data line is blank,
part of a kept record or quarantined, so rows in = rows kept + rows quarantined.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

WRONG_FIELD_COUNT = "wrong_field_count"
MALFORMED_QUOTING = "malformed_quoting"
MALFORMED_CSV = "malformed_csv"
_QUOTE, _DELIMITER = '"', ","


@dataclass(frozen=True)
class Rejected:
    """A record that cannot be used: the index of its first line, why, and the column where quoting breaks."""

    index: int
    reason: str
    column: int | None


@dataclass
class Records:
    """Kept records as (first line index, last line index, fields), rejected ones, and blank lines."""

    kept: list[tuple[int, int, list[str]]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)


class _Cursor:
    """Feeds lines to csv.reader and remembers how far it read, so each record knows its line span."""

    def __init__(self, lines: Sequence[str], start: int) -> None:
        self.lines, self.next_index = lines, start

    def __iter__(self) -> Iterator[str]:
        while self.next_index < len(self.lines):
            self.next_index += 1
            yield self.lines[self.next_index - 1]


def parse_records(lines: Sequence[str], start: int, width: int) -> Records:
    """Records of ``lines[start:]`` (decoded lines with their line ends) for a header of ``width`` fields."""
    records = Records()
    position = start
    while position < len(lines):
        position = _parse_run(lines, position, width, records)
    return records


def _parse_run(lines: Sequence[str], start: int, width: int, records: Records) -> int:
    """Parse from ``start`` up to the end or the first bad record; returns the index to resume at."""
    cursor = _Cursor(lines, start)
    first = start
    try:
        for record in csv.reader(cursor, strict=True):
            last = cursor.next_index - 1
            reason = _problem(lines, first, last, record, width)
            if reason is not None:
                records.rejected.append(Rejected(first, reason, broken_column(lines[first])))
                return first + 1
            if record:
                records.kept.append((first, last, record))
            else:
                records.blank.append(first)
            first = cursor.next_index
    except csv.Error:
        column = broken_column(lines[first])
        records.rejected.append(
            Rejected(first, MALFORMED_CSV if column is None else MALFORMED_QUOTING, column)
        )
        return first + 1
    return len(lines)


def _problem(lines: Sequence[str], first: int, last: int, record: list[str], width: int) -> str | None:
    """Why a record that csv accepted is still unusable, or None."""
    if first == last:
        return WRONG_FIELD_COUNT if record and len(record) != width else None
    if len(record) != width or any(is_complete_row(lines[i], width) for i in range(first + 1, last + 1)):
        return MALFORMED_QUOTING
    return None


def is_complete_row(line: str, width: int) -> bool:
    """Whether one line, read on its own, is a row of ``width`` fields."""
    return len(next(csv.reader([line]), [])) == width


def broken_column(line: str) -> int | None:
    """0-based column where this line's quoting breaks (a quote left open at the line end, or text after a
    closing quote); None when the line's own quoting is fine.

    Args:
        line: one physical line of a CSV file (its line ending is ignored).

    Returns:
        The column index, or None.
    """
    text = line.rstrip("\r\n")
    column, in_quotes, field_start, after_close = 0, False, True, False
    i = 0
    while i < len(text):
        char = text[i]
        if in_quotes:
            if char == _QUOTE and text[i + 1:i + 2] == _QUOTE:
                i += 1  # an escaped quote inside a quoted field
            elif char == _QUOTE:
                in_quotes, after_close = False, True
        elif char == _DELIMITER:
            column, field_start, after_close = column + 1, True, False
            i += 1
            continue
        elif after_close:
            return column
        elif char == _QUOTE and field_start:
            in_quotes = True
        field_start = False
        i += 1
    return column if in_quotes else None
