"""Event sources of the drift monitor: interaction files, prepared-data folders and the serving feedback log.

Everything becomes one *monitoring frame*: the interaction columns of ``hyperrec.data.prepared`` (user_id,
item_id, item_idx, event, timestamp, value, dwell_seconds, query, label) plus ``request_id`` (null outside the
feedback log). Feedback records ``{"request_id", "user_id", "item_id", "event", "value", "timestamp"}`` - or
as ``hyperrec.online.feedback`` writes them, ``{"request_id", "user", "type", "item_id", "value", "ts",
"received"}`` in ``feedback-NNNNNN.jsonl`` segments - map as:

=============  ===========  ==================================================================
feedback       event        value / dwell_seconds / label
=============  ===========  ==================================================================
impression     impression   value = the model score when the record carries one (else NaN); label False
click          click        value 1.0; label True
dwell          view         dwell_seconds = value; label = dwell >= feedback.min_dwell_seconds
rating         rating       value = the rating; label = rating >= feedback.min_rating (all when None)
=============  ===========  ==================================================================

Labels follow data prep's rule (``hyperrec.data.labels.is_positive``) and thresholds (``prep.*``) unless set
here. Impressions are what the system showed, not what users did: interaction features leave them out, and
they feed the prediction checks (recommended items, scores) and the click-through rate. Timestamps may be Unix
seconds, Unix milliseconds or ISO-8601 strings; they become int64 Unix seconds (UTC).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hyperrec.data.catalogue import catalogue_index
from hyperrec.data.files import read_frame, require_file
from hyperrec.data.labels import is_positive
from hyperrec.errors import DataError
from hyperrec.monitoring.settings import FeedbackSettings

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = (
    "user_id", "item_id", "item_idx", "event", "timestamp", "value", "dwell_seconds", "query", "label",
)
MONITOR_COLUMNS = (*INTERACTION_COLUMNS, "request_id")
FEEDBACK_EVENTS = {"impression": "impression", "click": "click", "dwell": "view", "rating": "rating"}
#: Field names of a feedback record: ours first, then those of ``hyperrec.online.feedback``'s log.
FEEDBACK_ALIASES = {"user_id": ("user_id", "user"), "event": ("event", "type"),
                    "timestamp": ("timestamp", "ts")}
FEEDBACK_SEGMENT_GLOB = "feedback-[0-9][0-9][0-9][0-9][0-9][0-9].jsonl"
IMPRESSION = "impression"
PREPARED_TABLES = {"interactions": "interactions.parquet", "train": "train.parquet"}
EXPECTED_EVENTS = ("an interaction table (.parquet, .csv, .jsonl) with user_id, event, timestamp, a "
                   "MovieLens ratings.csv, the feedback log (.jsonl) or a prepared-data folder")
_MS_THRESHOLD = 100_000_000_000  # Unix seconds reach this in the year 5138; larger values are milliseconds.


def parse_time(value: Any) -> int:
    """Unix seconds from Unix seconds/ms (number or digit string) or an ISO-8601 date/time (UTC if naive)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if not math.isfinite(float(value)):
            raise ValueError(f"not a time: {value!r}")
        seconds = float(value)
        return int(seconds / 1000 if abs(seconds) >= _MS_THRESHOLD else seconds)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    text = str(value).strip()
    try:
        return parse_time(float(text))
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    return parse_time(moment)


def _timestamps(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        values = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
        return (values.astype("int64") // 1_000_000_000).astype("int64")
    if pd.api.types.is_numeric_dtype(column):
        numbers = column.astype("float64")
        numbers = numbers.where(numbers.abs() < _MS_THRESHOLD, numbers / 1000)
        return numbers.astype("int64")
    return column.map(parse_time).astype("int64")


MOVIELENS_RATINGS = ("userId", "movieId", "rating", "timestamp")


def normalize_events(frame: pd.DataFrame, *, source: str = "events") -> pd.DataFrame:
    """Coerce any interaction-like table into the monitoring frame (missing optional columns get defaults).

    A MovieLens ``ratings.csv`` (userId, movieId, rating, timestamp) is read as rating events.
    """
    if set(MOVIELENS_RATINGS) <= set(frame.columns) and "event" not in frame.columns:
        frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id", "rating": "value"})
        frame = frame.assign(event="rating", item_id=frame["item_id"].astype(str))
    missing = [c for c in ("user_id", "event", "timestamp") if c not in frame.columns]
    if missing:
        raise DataError(f"missing columns {missing}; need at least user_id, event, timestamp", file=source)
    out = pd.DataFrame(index=frame.index)
    out["user_id"] = frame["user_id"].astype(str)
    out["item_id"] = frame["item_id"].astype("string") if "item_id" in frame else pd.Series(
        pd.NA, index=frame.index, dtype="string")
    out["item_idx"] = (
        pd.to_numeric(frame["item_idx"], errors="coerce").fillna(-1).astype("int32")
        if "item_idx" in frame else np.int32(-1)
    )
    out["event"] = frame["event"].astype(str).str.lower()
    try:
        out["timestamp"] = _timestamps(frame["timestamp"])
    except (ValueError, TypeError) as exc:
        raise DataError(f"unreadable timestamp: {exc}", file=source, field="timestamp") from None
    for name in ("value", "dwell_seconds"):
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64") if name in frame else np.nan
    out["query"] = frame.get("query")
    out["label"] = frame["label"].fillna(False).astype(bool) if "label" in frame else False
    out["request_id"] = frame["request_id"].astype("string") if "request_id" in frame else pd.Series(
        pd.NA, index=frame.index, dtype="string")
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class FeedbackParseStats:
    """What the feedback adapter kept and dropped (counts only: the log holds user data)."""

    records: int
    kept: int
    malformed: int
    unknown_event: int


def feedback_records_to_frame(
    records: Iterable[Mapping[str, Any]],
    *,
    item_index: Mapping[str, int] | None = None,
    settings: FeedbackSettings | None = None,
) -> tuple[pd.DataFrame, FeedbackParseStats]:
    """Feedback-log records as the monitoring frame; bad records are counted and dropped, never raised."""
    settings = settings or FeedbackSettings()
    rows: list[dict[str, Any]] = []
    total = malformed = unknown = 0
    for record in records:
        total += 1
        try:
            record = _canonical(record)
            kind = str(record["event"]).strip().lower()
            if kind not in FEEDBACK_EVENTS:
                unknown += 1
                continue
            rows.append(_feedback_row(record, kind, item_index, settings))
        except (KeyError, TypeError, ValueError):
            malformed += 1
    frame = normalize_events(pd.DataFrame(rows, columns=list(MONITOR_COLUMNS)), source="feedback log")
    stats = FeedbackParseStats(records=total, kept=len(frame), malformed=malformed, unknown_event=unknown)
    if malformed or unknown:
        logger.warning(
            "feedback log: kept %d of %d records (%d malformed, %d unknown event types)",
            stats.kept, total, malformed, unknown,
        )
    return frame, stats


def _canonical(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with our field names (user_id, event, timestamp), whichever spelling it used."""
    out = dict(record)
    for name, spellings in FEEDBACK_ALIASES.items():
        if name not in out:
            for spelling in spellings[1:]:
                if spelling in out:
                    out[name] = out[spelling]
                    break
    return out


def _feedback_row(
    record: Mapping[str, Any], kind: str, item_index: Mapping[str, int] | None, settings: FeedbackSettings
) -> dict[str, Any]:
    user = record["user_id"]
    if user is None or str(user) == "":
        raise ValueError("user_id is empty")
    item = record.get("item_id")
    item = None if item is None or str(item) == "" else str(item)
    raw_value = record.get("value")
    number = float(raw_value) if raw_value is not None and raw_value != "" else math.nan
    event = FEEDBACK_EVENTS[kind]
    value, dwell = math.nan, math.nan
    if kind == "impression":
        value = number
    elif kind == "click":
        value = 1.0
    elif kind == "dwell":
        if not math.isfinite(number) or number < 0:
            raise ValueError("dwell without a duration")
        value, dwell = 1.0, number
    else:
        if not math.isfinite(number):
            raise ValueError("rating without a value")
        value = number
    label = is_positive(event, value, dwell, settings.min_rating, settings.min_dwell_seconds)
    request = record.get("request_id")
    return {
        "user_id": str(user),
        "item_id": item,
        "item_idx": item_index.get(item, -1) if (item_index is not None and item is not None) else -1,
        "event": event,
        "timestamp": parse_time(record["timestamp"]),
        "value": value,
        "dwell_seconds": dwell,
        "query": None,
        "label": label,
        "request_id": None if request is None else str(request),
    }


def _jsonl_records(path: Path) -> Iterable[Mapping[str, Any] | None]:
    """Yield parsed lines; None for a line that is no JSON object (the half-written last line, not UTF-8)."""
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                yield None
                continue
            yield record if isinstance(record, dict) else None


def read_feedback_log(
    path: Path, *, item_index: Mapping[str, int] | None = None, settings: FeedbackSettings | None = None
) -> pd.DataFrame:
    """Read a feedback-log JSONL that is still being appended to: unparsable lines are counted and skipped."""
    records = (r if r is not None else {} for r in _jsonl_records(path))  # {} is counted as malformed
    frame, _ = feedback_records_to_frame(records, item_index=item_index, settings=settings)
    return frame


def _is_feedback(path: Path) -> bool:
    for record in _jsonl_records(path):
        if record is None:
            continue
        kind = str(_canonical(record).get("event", "")).lower()
        return "request_id" in record or kind in {"impression", "dwell"}
    return False


def read_feedback_segments(
    path: Path, *, item_index: Mapping[str, int] | None = None, settings: FeedbackSettings | None = None
) -> pd.DataFrame:
    """The serving feedback log (``feedback-NNNNNN.jsonl`` segments under ``path``), read with its own reader.

    ``hyperrec.online.feedback.read_feedback`` skips torn last lines (a writer killed mid-line) and reports
    corrupt ones; only their counts are logged here.
    """
    from hyperrec.online.feedback import read_feedback

    records: list[dict[str, Any]] = []
    torn = corrupt = 0
    for folder in sorted({p.parent for p in path.rglob(FEEDBACK_SEGMENT_GLOB)}):
        found = read_feedback(folder)
        records += found.records
        torn, corrupt = torn + len(found.torn), corrupt + len(found.corrupt)
    if torn or corrupt:
        logger.warning("feedback log %s: skipped %d torn and %d corrupt lines", path, torn, corrupt)
    frame, _ = feedback_records_to_frame(records, item_index=item_index, settings=settings)
    return frame


def read_item_index(path: Path) -> dict[str, int]:
    """item_id -> item_idx (the catalogue order of the embedding matrix rows): a prepared items.parquet or the
    raw items file it came from (hyperrec.data.catalogue)."""
    return catalogue_index(path)


def _with_item_index(frame: pd.DataFrame, item_index: Mapping[str, int] | None) -> pd.DataFrame:
    if item_index is None or not (frame["item_idx"] < 0).any():
        return frame
    unknown = frame["item_idx"] < 0
    mapped = frame.loc[unknown, "item_id"].map(lambda i: item_index.get(i, -1) if isinstance(i, str) else -1)
    frame.loc[unknown, "item_idx"] = mapped.astype("int32")
    return frame


def read_events(
    path: str | Path,
    *,
    item_index: Mapping[str, int] | None = None,
    feedback: FeedbackSettings | None = None,
    table: str = "interactions",
) -> pd.DataFrame:
    """Read a file or a folder into the monitoring frame.

    - a prepared folder (``interactions.parquet``): that table, or ``train.parquet`` with ``table='train'``;
    - a folder of feedback-log segments (``feedback-NNNNNN.jsonl``, also in subfolders): the feedback log;
    - another folder: every ``*.parquet``, ``*.csv``, ``*.jsonl`` and ``*.json`` in it, in name order;
    - ``.parquet`` / ``.csv``: an interaction table; ``.jsonl`` / ``.json``: the feedback log when its records
      carry ``request_id`` or feedback-only events, else interaction records.

    Args:
        path: the file or folder, read as listed above.
        item_index: item_id -> item_idx, to fill item_idx where the source lacks it.
        feedback: how feedback events become labels and values.
        table: for a prepared-data folder, which table: "interactions" or "train".

    Returns:
        The monitoring frame; a DataError names the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("event source not found", file=str(path))
    if path.is_dir():
        if (path / PREPARED_TABLES["interactions"]).exists():
            if table not in PREPARED_TABLES:
                raise DataError(f"unknown prepared table {table!r}; expected one of "
                                f"{sorted(PREPARED_TABLES)}")
            return read_events(path / PREPARED_TABLES[table], item_index=item_index, feedback=feedback)
        if next(path.rglob(FEEDBACK_SEGMENT_GLOB), None) is not None:
            return read_feedback_segments(path, item_index=item_index, settings=feedback)
        files = sorted(p for p in path.iterdir() if p.suffix in {".parquet", ".csv", ".jsonl", ".json"})
        if not files:
            raise DataError("no .parquet/.csv/.jsonl/.json files in the folder", file=str(path))
        frames = [read_events(p, item_index=item_index, feedback=feedback) for p in files]
        return pd.concat(frames, ignore_index=True)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".csv"}:
        frame = normalize_events(read_frame(path, EXPECTED_EVENTS), source=str(path))
    elif suffix in {".jsonl", ".json"}:
        require_file(path, EXPECTED_EVENTS)
        if _is_feedback(path):
            return read_feedback_log(path, item_index=item_index, settings=feedback)
        frame = normalize_events(pd.DataFrame([r for r in _jsonl_records(path) if r]), source=str(path))
    else:
        raise DataError(f"unsupported event file type {suffix!r}; expected {EXPECTED_EVENTS}", file=str(path))
    return _with_item_index(frame, item_index)
