"""Atomic rewrites of files that hold forgotten users: a temp file beside the original, fsync, ``os.replace``.

A reader sees either the old file or the new one, never half of each. Feedback segments are rewritten under
the same ``flock`` the feedback log's writers take, so an append racing the rewrite either lands before it
(and is filtered with the rest) or waits and then reopens the new file (hyperrec.online.feedback checks the
inode).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

#: Feedback segment names (hyperrec.online.feedback).
SEGMENT_GLOB = "feedback-*.jsonl"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` in one step, keeping its permission bits.

    Args:
        path: the file to replace (created with mode 0640 if missing).
        data: its new contents.
    """
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o640
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def filter_lines(path: Path, drop: Callable[[bytes], bool], *, lock: bool = False) -> int:
    """Rewrite a line-oriented file without the lines ``drop`` selects; returns how many went (0: untouched).

    ``lock``: hold an exclusive flock on the file while reading and replacing it (feedback segments). A torn
    last line (no newline) is kept as it is: it is the feedback log's own business.

    Args:
        path: the file to rewrite.
        drop: says, for a line without its newline, whether it goes.
        lock: hold an exclusive flock while reading and replacing.

    Returns:
        The number of lines removed.
    """
    with path.open("rb") as handle:
        if lock:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        lines = handle.read().split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        kept = [line for line in complete if not drop(line)]
        removed = len(complete) - len(kept)
        if tail and drop(tail):
            tail, removed = b"", removed + 1
        if removed:
            write_atomically(path, b"".join(line + b"\n" for line in kept) + tail)
    return removed


def mentions(needles: set[str]) -> Callable[[bytes], bool]:
    """A line test: does the line hold any of the pseudonyms (32 hex characters: no accidental matches)."""
    encoded = [n.encode("ascii") for n in needles]
    return lambda line: any(n in line for n in encoded)


def older_than(cutoff: float) -> Callable[[bytes], bool]:
    """A feedback-line test: is the record's ``ts`` before ``cutoff`` (unreadable lines are kept).

    Args:
        cutoff: the Unix time before which a record goes.

    Returns:
        The test, for ``filter_lines``.
    """
    def test(line: bytes) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False
        ts = record.get("ts") if isinstance(record, dict) else None
        return isinstance(ts, (int, float)) and ts < cutoff

    return test


def filter_parquet(path: Path, needles: set[str]) -> int:
    """Rewrite a Parquet table without the rows whose text columns hold a pseudonym; returns rows removed.

    Args:
        path: the Parquet file.
        needles: the pseudonyms; a row goes when any of its text values contains one.

    Returns:
        The number of rows removed (0: the file is untouched).
    """
    table = pq.read_table(path)
    frame = table.to_pandas()
    text_columns = [c for c in frame.columns if frame[c].dtype == object]
    if not text_columns:
        return 0
    hit = pd.Series(False, index=frame.index)
    for column in text_columns:
        hit |= frame[column].map(lambda v: isinstance(v, str) and any(n in v for n in needles))
    if not hit.any():
        return 0
    kept = pd.DataFrame(frame[~hit]).reset_index(drop=True)
    buffer = io.BytesIO()
    kept.to_parquet(buffer, index=False, schema=table.schema.remove_metadata())
    write_atomically(path, buffer.getvalue())
    return int(hit.sum())
