"""Read raw files into typed frames, quarantining every row that cannot be used.

File-level problems (missing file, unreadable file, empty file, missing required column) stop the run with a
DataError naming the file and field: no amount of row filtering can repair them. Row-level problems (a line
that is not UTF-8, a bad timestamp, an unknown event type, a non-numeric rating...) send just that row to the
quarantine and the run goes on.

Row numbers are the 1-based line numbers a text editor shows: in a CSV the header is line 1, so the first
data row is row 2; in JSON Lines the first record is row 1; in Parquet, row N is the N-th record.
Files are decoded line by line so that one line with broken UTF-8 quarantines only itself.

User ids are pseudonymized as soon as a table is read, so raw ids never reach the quarantine, a log line,
or any later step.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hyperrec.config import DataConfig
from hyperrec.data.csv_records import Records, parse_records
from hyperrec.data.labels import EVENT_TYPES
from hyperrec.data.privacy_filter import CONSENT_COLUMN, parse_consent
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import FILE_COLUMN, ROW_COLUMN, Quarantine
from hyperrec.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user_id", "item_id", "event", "timestamp", "value", "dwell_seconds", "query")
INTERACTION_REQUIRED = ("user_id", "item_id", "event")
ITEM_COLUMNS = ("item_id", "title", "text", "categories")
ITEM_REQUIRED = ("item_id", "title")

MOVIELENS_RATINGS = "ratings.csv"
MOVIELENS_MOVIES = "movies.csv"
MOVIELENS_TAGS = "tags.csv"
_MOVIELENS_RENAME = {"userId": "user_id", "movieId": "item_id", "rating": "value"}
_MOVIELENS_NO_GENRES = "(no genres listed)"
CATEGORY_SEPARATOR = "|"

#: Accepted Unix-second range (1970-01-01 to 2100-01-01 UTC): rejects millisecond timestamps read as seconds.
_MIN_TIMESTAMP, _MAX_TIMESTAMP = 0, 4_102_444_800
_EPOCH = pd.Timestamp(0, tz="UTC")

_CSV_SUFFIXES = {".csv"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass
class RawTable:
    """A file's rows as stripped strings (None when empty), with ``_file`` and ``_row`` columns."""

    name: str
    frame: pd.DataFrame
    rows_read: int


@dataclass
class LoadedData:
    """Typed, validated raw data; user ids are already pseudonyms."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    tags: pd.DataFrame
    has_timestamps: bool
    rows_read: dict[str, int]
    interactions_file: str


# --- files -> string tables --------------------------------------------------------------------------


def read_table(path: Path, required: Sequence[str], quarantine: Quarantine) -> RawTable:
    """Read CSV, JSON Lines or Parquet; quarantine rows that cannot be parsed at all."""
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        frame = _read_parquet(path)
        rows, skipped = list(range(1, len(frame) + 1)), 0
    elif suffix in _CSV_SUFFIXES | _JSONL_SUFFIXES:
        reader = _read_csv if suffix in _CSV_SUFFIXES else _read_jsonl
        frame, rows, skipped = reader(path, _read_bytes(path), quarantine)
    else:
        raise DataError(f"unsupported file type {suffix!r}; use .csv, .jsonl or .parquet", file=str(path))
    if len(frame.columns):  # a JSON Lines file whose every line is broken has no columns to check
        _require_columns(path, frame.columns, required)
    if len(frame) + skipped == 0:
        raise DataError("file has no data rows", file=str(path))
    if len(frame) == 0:
        raise DataError(
            f"none of the {skipped} data rows can be read (not UTF-8 or malformed)", file=str(path)
        )
    frame = _strip_cells(frame)
    frame[FILE_COLUMN] = path.name
    frame[ROW_COLUMN] = rows
    return RawTable(name=path.name, frame=frame, rows_read=len(frame) + skipped)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", file=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    if not raw.strip():
        raise DataError("file is empty", file=str(path))
    return raw


def _require_columns(path: Path, columns: Sequence[str], required: Sequence[str]) -> None:
    for name in required:
        if name not in columns:
            raise DataError(f"required column {name!r} is missing", file=str(path), field=name)


def _decoded_lines(raw: bytes) -> tuple[list[int], list[str], list[int]]:
    """Line numbers and text of the lines that decode as UTF-8 (line ends kept), and the numbers of those
    that do not: one undecodable line is quarantined alone."""
    numbers: list[int] = []
    texts: list[str] = []
    bad_lines: list[int] = []
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad_lines.append(number)
            continue
        numbers.append(number)
    return numbers, texts, bad_lines


def _read_csv(path: Path, raw: bytes, quarantine: Quarantine) -> tuple[pd.DataFrame, list[int], int]:
    """Rows of a CSV file; malformed quoting and wrong field counts quarantine one line each (csv_records)."""
    numbers, texts, bad_lines = _decoded_lines(raw)
    header_index, header = _csv_header(path, numbers, texts, bad_lines)
    records = parse_records(texts, header_index + 1, len(header))
    for rejected in records.rejected:
        column = (
            header[rejected.column] if rejected.column is not None and rejected.column < len(header) else None
        )
        quarantine.add_lines(path.name, [numbers[rejected.index]], reason=rejected.reason, field_name=column)
    quarantine.add_lines(path.name, bad_lines, reason="not_utf8")
    skipped = len(records.rejected) + len(bad_lines)
    missing = _unaccounted(raw, numbers[header_index], records, numbers, bad_lines)
    if missing:  # a guard on the parser: no line may vanish between the file and the tables
        logger.error(
            "%s: %d lines matched no row and no quarantine record; quarantined", path.name, len(missing)
        )
        quarantine.add_lines(path.name, missing, reason="unaccounted_line")
        skipped += len(missing)
    rows = [fields for _, _, fields in records.kept]
    return pd.DataFrame(rows, columns=header), [numbers[first] for first, _, _ in records.kept], skipped


def _unaccounted(raw: bytes, header_line: int, records: Records, numbers: list[int],
                 bad_lines: list[int]) -> list[int]:
    """Non-blank physical lines after the header, counted without the CSV parser, that no kept record spans
    and no quarantine record names."""
    physical = raw.splitlines()
    accounted = np.zeros(len(physical) + 1, dtype=bool)
    accounted[: header_line + 1] = True
    accounted[bad_lines] = True
    accounted[[numbers[r.index] for r in records.rejected]] = True
    for first, last, _ in records.kept:
        accounted[numbers[first]: numbers[last] + 1] = True
    return [n for n in np.nonzero(~accounted)[0].tolist() if physical[n - 1].strip()]


def _csv_header(
    path: Path, numbers: list[int], texts: list[str], bad_lines: list[int]
) -> tuple[int, list[str]]:
    """The first non-blank line (index into ``texts``, names), which must be a clean UTF-8 line."""
    for index, text in enumerate(texts):
        if bad_lines and bad_lines[0] < numbers[index]:
            break
        if text.strip():
            names = [name.strip() for name in next(csv.reader([text]))]
            names[0] = names[0].lstrip("\ufeff")
            return index, names
    raise DataError("the header line is missing or not valid UTF-8", file=str(path))


def _read_jsonl(path: Path, raw: bytes, quarantine: Quarantine) -> tuple[pd.DataFrame, list[int], int]:
    records: list[dict] = []
    numbers: list[int] = []
    bad_lines: list[int] = []
    malformed: list[int] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad_lines.append(number)
            continue
        except json.JSONDecodeError:
            malformed.append(number)
            continue
        if not isinstance(record, dict):
            malformed.append(number)
            continue
        records.append(record)
        numbers.append(number)
    quarantine.add_lines(path.name, bad_lines, reason="not_utf8")
    quarantine.add_lines(path.name, malformed, reason="bad_json")
    return pd.DataFrame(records, dtype=object), numbers, len(bad_lines) + len(malformed)


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError("file not found", file=str(path))
    try:
        return pd.read_parquet(path, dtype_backend="numpy_nullable")
    except (OSError, ValueError) as exc:  # pyarrow: ArrowIOError is an OSError, ArrowInvalid a ValueError
        raise DataError(f"cannot read Parquet file: {exc}", file=str(path)) from None


def _strip_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as a stripped string, empty ones as None; list-valued categories are kept as lists."""
    out = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        column = frame[name].astype(object)
        if name == "categories" and column.map(_is_list).any():
            out[name] = column.where(column.map(_is_list) | column.notna(), None)
            continue
        present = column.notna()
        text = column[present].astype(str).str.strip()
        text = text[text != ""].reindex(frame.index)
        out[name] = text.astype(object).where(text.notna(), None)
    return out


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


# --- string tables -> typed frames -----------------------------------------------------------------


def parse_timestamps(text: pd.Series) -> pd.Series:
    """Unix seconds from numbers (Unix seconds) or ISO-8601 strings; NaN where missing or invalid."""
    seconds = pd.to_numeric(text, errors="coerce").astype(float)
    iso = seconds.isna() & text.notna()
    if iso.any():
        parsed = pd.to_datetime(text[iso], utc=True, format="ISO8601", errors="coerce")
        seconds[iso] = (parsed - _EPOCH) // pd.Timedelta(seconds=1)
    seconds = np.floor(seconds)
    return seconds.where((seconds >= _MIN_TIMESTAMP) & (seconds < _MAX_TIMESTAMP))


def _numbers(text: pd.Series) -> pd.Series:
    """Finite floats; NaN where missing, non-numeric or infinite."""
    values = pd.to_numeric(text, errors="coerce").astype(float)
    return values.where(np.isfinite(values))


def _reject(frame: pd.DataFrame, checks: list[tuple[str, str, pd.Series]],
            quarantine: Quarantine) -> pd.Series:
    """Quarantine each row under the first check it fails; return the mask of rows that passed all."""
    rejected = pd.Series(False, index=frame.index)
    for reason, field_name, failed in checks:
        new = failed & ~rejected
        quarantine.add_rows(frame[new], reason=reason, field_name=field_name)
        rejected |= new
    return ~rejected


def parse_interactions(table: RawTable, pseudonymizer: Pseudonymizer,
                       quarantine: Quarantine) -> tuple[pd.DataFrame, bool]:
    """Validate an interactions table in canonical columns; returns typed rows and whether it has time."""
    raw = table.frame.copy()
    for name in INTERACTION_COLUMNS:
        if name not in raw.columns:
            raw[name] = None
    raw["user_id"] = pseudonymizer.pseudonymize_or_keep(raw["user_id"])
    raw["event"] = raw["event"].str.lower()
    has_timestamps = bool(table.frame.get("timestamp", pd.Series(dtype=object)).notna().any())
    timestamps = parse_timestamps(raw["timestamp"])
    values, dwell = _numbers(raw["value"]), _numbers(raw["dwell_seconds"])
    event = raw["event"]
    checks = [
        ("missing_value", "user_id", raw["user_id"].isna()),
        ("missing_value", "event", event.isna()),
        ("unknown_event", "event", event.notna() & ~event.isin(EVENT_TYPES)),
        ("missing_value", "item_id", raw["item_id"].isna() & (event != "search")),
        ("bad_timestamp", "timestamp", timestamps.isna() & has_timestamps),
        ("bad_rating", "value", (event == "rating") & values.isna()),
        ("bad_value", "value", raw["value"].notna() & values.isna()),
        ("bad_dwell", "dwell_seconds", raw["dwell_seconds"].notna() & ~(dwell >= 0)),
    ]
    consent = parse_consent(raw[CONSENT_COLUMN]) if CONSENT_COLUMN in raw.columns else None
    if consent is not None:
        checks.append(("bad_consent", CONSENT_COLUMN, raw[CONSENT_COLUMN].notna() & consent.isna()))
    keep = _reject(raw, checks, quarantine)
    typed = raw.loc[keep, ["user_id", "item_id", "event", "query", FILE_COLUMN, ROW_COLUMN]].copy()
    typed["timestamp"] = timestamps[keep].fillna(0).astype(np.int64)
    typed["value"] = values[keep]
    typed["dwell_seconds"] = dwell[keep]
    columns = [*INTERACTION_COLUMNS, FILE_COLUMN, ROW_COLUMN]
    if consent is not None:  # read by hyperrec.data.privacy_filter, then dropped
        typed[CONSENT_COLUMN] = consent[keep]
        columns.append(CONSENT_COLUMN)
    return typed[columns].reset_index(drop=True), has_timestamps


def parse_items(table: RawTable, quarantine: Quarantine) -> pd.DataFrame:
    """Validate an items table: item ids present and unique; categories as lists of strings."""
    raw = table.frame.copy()
    for name in ITEM_COLUMNS:
        if name not in raw.columns:
            raw[name] = None
    checks = [
        ("missing_value", "item_id", raw["item_id"].isna()),
        ("duplicate_item", "item_id", raw["item_id"].notna() & raw["item_id"].duplicated(keep="first")),
    ]
    items = raw.loc[_reject(raw, checks, quarantine)].copy()
    items["title"] = items["title"].fillna("")
    items["text"] = items["text"].fillna("")
    items["categories"] = items["categories"].map(_categories)
    return items[[*ITEM_COLUMNS, FILE_COLUMN, ROW_COLUMN]].reset_index(drop=True)


def _categories(value: object) -> list[str]:
    """``a|b|c`` strings or list cells as a list of non-empty names."""
    if _is_list(value):
        parts = [str(v) for v in value]
    elif value is None:
        parts = []
    else:
        parts = str(value).split(CATEGORY_SEPARATOR)
    return [p.strip() for p in parts if p.strip() and p.strip() != _MOVIELENS_NO_GENRES]


def parse_tags(table: RawTable, pseudonymizer: Pseudonymizer, quarantine: Quarantine) -> pd.DataFrame:
    """Validate MovieLens tags; keep item_id and tag text (user ids matter only to the quarantine)."""
    raw = table.frame.rename(columns=_MOVIELENS_RENAME)
    raw["user_id"] = pseudonymizer.pseudonymize_series(raw["user_id"])
    checks = [
        ("missing_value", "item_id", raw["item_id"].isna()),
        ("missing_value", "tag", raw["tag"].isna()),
        ("bad_timestamp", "timestamp", parse_timestamps(raw["timestamp"]).isna()),
    ]
    keep = _reject(raw, checks, quarantine)
    return raw.loc[keep, ["item_id", "tag", FILE_COLUMN, ROW_COLUMN]].reset_index(drop=True)


def drop_unknown_items(frame: pd.DataFrame, catalogue: pd.Series, quarantine: Quarantine) -> pd.DataFrame:
    """Quarantine rows whose item_id is not in the items file (``unknown_item``); searches may have none."""
    unknown = frame["item_id"].notna() & ~frame["item_id"].isin(catalogue)
    quarantine.add_rows(frame[unknown], reason="unknown_item", field_name="item_id")
    return frame[~unknown].reset_index(drop=True)


# --- datasets ----------------------------------------------------------------------------------------


def load_movielens(folder: Path, pseudonymizer: Pseudonymizer, quarantine: Quarantine) -> LoadedData:
    """ratings.csv → rating events; movies.csv → items; tags.csv (optional) → tag text for items."""
    ratings = read_table(folder / MOVIELENS_RATINGS, ("userId", "movieId", "rating", "timestamp"), quarantine)
    movies = read_table(folder / MOVIELENS_MOVIES, ("movieId", "title", "genres"), quarantine)
    ratings.frame = ratings.frame.rename(columns=_MOVIELENS_RENAME).assign(event="rating")
    movies.frame = movies.frame.rename(columns={"movieId": "item_id", "genres": "categories"})
    interactions, _ = parse_interactions(ratings, pseudonymizer, quarantine)
    rows_read = {ratings.name: ratings.rows_read, movies.name: movies.rows_read}
    tags = pd.DataFrame(columns=["item_id", "tag", FILE_COLUMN, ROW_COLUMN])
    if (folder / MOVIELENS_TAGS).exists():
        tag_table = read_table(folder / MOVIELENS_TAGS, ("userId", "movieId", "tag", "timestamp"), quarantine)
        tags = parse_tags(tag_table, pseudonymizer, quarantine)
        rows_read[tag_table.name] = tag_table.rows_read
    else:
        logger.info("no %s in the dataset folder: items get no tag text", MOVIELENS_TAGS)
    return LoadedData(interactions, parse_items(movies, quarantine), tags, True, rows_read, ratings.name)


def load_generic(data: DataConfig, pseudonymizer: Pseudonymizer, quarantine: Quarantine) -> LoadedData:
    """Interactions and items files of the generic format (docs/DATA.md)."""
    if data.interactions_path is None or data.items_path is None:
        raise ConfigError("data.format 'generic' needs data.interactions_path and data.items_path")
    table = read_table(data.interactions_path, INTERACTION_REQUIRED, quarantine)
    items_table = read_table(data.items_path, ITEM_REQUIRED, quarantine)
    interactions, has_timestamps = parse_interactions(table, pseudonymizer, quarantine)
    if not has_timestamps:
        logger.warning("%s has no timestamps: splits fall back to a seeded random leave-one-out", table.name)
    tags = pd.DataFrame(columns=["item_id", "tag", FILE_COLUMN, ROW_COLUMN])
    rows_read = {table.name: table.rows_read, items_table.name: items_table.rows_read}
    return LoadedData(interactions, parse_items(items_table, quarantine), tags, has_timestamps, rows_read,
                      table.name)
