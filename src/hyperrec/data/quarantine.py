"""Rejected rows, kept with where they came from and why, so that nothing disappears silently.

A quarantine record says which file and row, which field and which reason; it also keeps the row's values
so that a data owner can fix the source, minus anything that could identify a person: free text is dropped
(queries, tags, titles, descriptions) and user ids are already pseudonyms when rows reach the quarantine.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Columns never copied into a quarantine record: user-written or otherwise free text.
FREE_TEXT_COLUMNS = frozenset({"query", "tag", "text", "title"})
#: Internal bookkeeping columns (file name, row number, event id) start with this prefix.
INTERNAL_PREFIX = "_"
ROW_COLUMN = "_row"
FILE_COLUMN = "_file"


@dataclass
class Quarantine:
    """Collects rejected rows from every step; written once as JSON Lines."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def add_rows(self, rows: pd.DataFrame, *, reason: str, field_name: str | None) -> None:
        """Quarantine the rows of a frame carrying ``_file`` and ``_row`` columns."""
        if rows.empty:
            return
        kept = [c for c in rows.columns if c not in FREE_TEXT_COLUMNS and not c.startswith(INTERNAL_PREFIX)]
        values = rows[kept].astype(object).where(rows[kept].notna(), None).to_dict("records")
        for file_name, row, raw in zip(rows[FILE_COLUMN], rows[ROW_COLUMN], values):
            self.records.append(_record(str(file_name), int(row), field_name, reason, raw))

    def add_lines(
        self, file_name: str, rows: Iterable[int], *, reason: str, field_name: str | None = None
    ) -> None:
        """Quarantine rows that could not be parsed at all, so no values are kept."""
        for row in rows:
            self.records.append(_record(file_name, int(row), field_name, reason, {}))

    def counts_by_reason(self) -> dict[str, int]:
        """Number of quarantined rows per reason, largest first."""
        return dict(Counter(r["reason"] for r in self.records).most_common())

    def count(self, file_name: str) -> int:
        """Number of quarantined rows that came from one file."""
        return sum(1 for r in self.records if r["file"] == file_name)

    def write_jsonl(self, path: Path) -> None:
        """One JSON object per line; an empty file when nothing was rejected."""
        with path.open("w", encoding="utf-8") as out:
            for record in self.records:
                out.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")


def _record(file_name: str, row: int, field_name: str | None, reason: str,
            values: dict[str, Any]) -> dict[str, Any]:
    return {"file": file_name, "row": row, "field": field_name, "reason": reason, "values": values}


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays (e.g. category lists) as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
