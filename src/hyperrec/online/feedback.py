"""Append-only, crash-safe feedback log: what users did with the recommendations they were shown.

One JSON object per line, keyed by the request id of the answer it is about::

    {"request_id": "...", "user": "<pseudonym>", "type": "click", "item_id": "m1", "value": null,
     "ts": 1732500000.0, "received": 1732500000.1}

Durability: ``FeedbackLog.append`` writes a whole batch with one ``write`` on an ``O_APPEND`` descriptor, then
``fsync``s before it returns, so every acknowledged event survives a crash or a kill. Lines are orjson's
compact JSON (``encode_records``); ``hyperrec.online.served`` encodes batches off the request path and commits
many requests' batches with one ``write_encoded``. A crash mid-write can
leave one torn line at the end of a segment file; the writer never appends after a torn tail (it starts a
new segment), and ``read_feedback`` skips that line and reports it. Segments rotate past a size limit:
``feedback-000001.jsonl``, ``feedback-000002.jsonl``, ...
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import orjson

from hyperrec.online.errors import InvalidRequest
from hyperrec.online.guard_settings import HttpGuardConfig
from hyperrec.online.requests import check_fields, decode_body, item_id, parse_user_id, valid_request_id

FEEDBACK_TYPES = ("impression", "click", "dwell", "rating")
_SEGMENT_RE = re.compile(r"^feedback-(\d{6})\.jsonl$")
_EVENT_FIELDS = {"type", "item_id", "value", "timestamp"}
_BODY_FIELDS = {"request_id", "user_id", "events"}


# ------------------------------------------------------------------------------------------------ parsing


def parse_feedback(
    body: Any, *, pseudonymize: Callable[[str], str], max_events: int, max_user_id_chars: int = 256,
    known_item: Callable[[str], bool] | None = None, limits: HttpGuardConfig | None = None,
) -> list[dict[str, Any]]:
    """Validate a feedback body into log records (raises InvalidRequest).

    ``{"request_id": "...", "user_id": "u42", "events": [{"type": "click", "item_id": "m1"},
    {"type": "dwell", "item_id": "m1", "value": 31.5}, {"type": "rating", "item_id": "m1", "value": 4}]}``

    ``known_item``: whether an item id is in the served catalogue (unknown ids are a 400: they could only
    pollute the log); ``limits``: the plausible ranges of values and timestamps (``serving.http``).
    """
    limits = limits or HttpGuardConfig()
    body = decode_body(body)
    check_fields(body, _BODY_FIELDS, "the feedback")
    if body.get("request_id") is None:
        raise InvalidRequest("request_id is required: the id of the answer this feedback is about")
    request_id = valid_request_id(body["request_id"])
    user = parse_user_id(body, pseudonymize, max_user_id_chars)
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise InvalidRequest("events must be a non-empty list")
    if len(events) > max_events:
        raise InvalidRequest(f"events has {len(events)} entries; at most {max_events} are accepted")
    received = time.time()
    base = {"request_id": request_id, "user": user}
    return [{**base, **_event(event, f"events[{i}]", received, limits, known_item), "received": received}
            for i, event in enumerate(events)]


def _event(event: Any, where: str, received: float, limits: HttpGuardConfig,
           known_item: Callable[[str], bool] | None) -> dict[str, Any]:
    """One event's type, item, value and timestamp, each checked against its rule."""
    if not isinstance(event, Mapping):
        raise InvalidRequest(f"{where} must be an object")
    check_fields(event, _EVENT_FIELDS, where)
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in FEEDBACK_TYPES:
        raise InvalidRequest(f"{where}.type must be one of {list(FEEDBACK_TYPES)}")
    if "item_id" not in event:
        raise InvalidRequest(f"{where}.item_id is required")
    item = item_id(event["item_id"], f"{where}.item_id", limits.max_item_id_chars)
    if known_item is not None and not known_item(item):
        raise InvalidRequest(f"{where}.item_id is not in the served catalogue")
    return {"type": kind, "item_id": item, "value": _value(event.get("value"), kind, where, limits),
            "ts": _timestamp(event.get("timestamp", received), where, received, limits)}


def _value(value: Any, kind: str, where: str, limits: HttpGuardConfig) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or abs(value) > limits.feedback_max_value):
        raise InvalidRequest(
            f"{where}.value must be a finite number of at most {limits.feedback_max_value:g}"
        )
    if kind == "dwell" and (value is None or value < 0):
        raise InvalidRequest(f"{where}: a dwell event needs value = seconds >= 0")
    if kind == "rating" and value is None:
        raise InvalidRequest(f"{where}: a rating event needs a numeric value")
    return None if value is None else float(value)


def _timestamp(ts: Any, where: str, received: float, limits: HttpGuardConfig) -> float:
    oldest = received - limits.feedback_max_age_days * 86_400
    newest = received + limits.feedback_max_ahead_s
    if (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)
            or not oldest <= ts <= newest):
        raise InvalidRequest(
            f"{where}.timestamp must be Unix seconds within the last {limits.feedback_max_age_days:g} days "
            f"(at most {limits.feedback_max_ahead_s:g} s ahead)"
        )
    return float(ts)


# ------------------------------------------------------------------------------------------------ writing


class FeedbackLog:
    """Appends record batches durably; safe to share between threads and processes of one host."""

    def __init__(self, directory: Path, *, rotate_bytes: int = 64 * 1024 * 1024) -> None:
        if rotate_bytes < 1:
            raise ValueError("rotate_bytes must be positive")
        self.directory = Path(directory)
        self.rotate_bytes = rotate_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._open_segment(start_new=False)

    @property
    def path(self) -> Path:
        """The segment file now written to."""
        assert self._path is not None
        return self._path

    def append(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Write the batch with one write + fsync; return how many records it held."""
        if records:
            self.write_encoded(encode_records(records))
        return len(records)

    def write_encoded(self, data: bytes) -> None:
        """Append whole lines of ``encode_records`` with one write + fsync (one commit for many batches)."""
        if not data:
            return
        with self._lock:
            fd = self._require_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _is_current(fd, self.path):  # an erasure rewrote the segment (hyperrec.privacy): reopen it
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._open_segment(start_new=False)
                fd = self._require_fd()
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if size >= self.rotate_bytes:
                self._open_segment(start_new=True)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ValueError("feedback log is closed")
        return self._fd

    def _open_segment(self, *, start_new: bool) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        segments = _segments(self.directory)
        last = segments[-1] if segments else None
        if (
            last is not None
            and not start_new
            and not _ends_torn(last)
            and last.stat().st_size < self.rotate_bytes
        ):
            path = last
        else:
            number = int(_SEGMENT_RE.match(last.name).group(1)) + 1 if last is not None else 1
            path = self.directory / f"feedback-{number:06d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._path = path
        _fsync_dir(self.directory)


def encode_records(records: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON line per record, UTF-8 (numpy scalars and arrays as numbers and lists)."""
    return b"".join(
        orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY) for r in records
    )


def _is_current(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (an atomic rewrite replaces the file under the name)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _segments(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).iterdir() if _SEGMENT_RE.match(p.name))


def _ends_torn(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) != b"\n"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class BadLine:
    """A line that could not be read: where it is and why."""

    file: str
    line: int
    reason: str


@dataclass
class FeedbackRead:
    """What ``read_feedback`` found."""

    records: list[dict[str, Any]] = field(default_factory=list)
    #: Torn last lines of segments (a crash mid-write): expected after a kill, never acknowledged events.
    torn: list[BadLine] = field(default_factory=list)
    #: Bad lines anywhere else: real corruption.
    corrupt: list[BadLine] = field(default_factory=list)


def read_feedback(directory: Path) -> FeedbackRead:
    """Every record of every segment, oldest first; torn tails skipped and reported."""
    result = FeedbackRead()
    directory = Path(directory)
    if not directory.exists():
        return result
    for path in _segments(directory):
        result.records.extend(_read_segment(path, result))
    return result


def _read_segment(path: Path, result: FeedbackRead) -> Iterable[dict[str, Any]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail is b"" when the file ends with a newline
    records = []
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            result.corrupt.append(BadLine(path.name, number, f"unreadable line: {exc}"))
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            result.corrupt.append(BadLine(path.name, number, "line is not a JSON object"))
    if tail:
        result.torn.append(
            BadLine(path.name, len(complete) + 1, f"torn last line ({len(tail)} bytes without a newline)")
        )
    return records
