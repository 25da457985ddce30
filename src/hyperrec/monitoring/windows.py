"""The two sides a drift check compares: ``Window`` (events, source, bounds) and how a window is cut.

Split from ``hyperrec.monitoring.events``, which reads and normalizes the events a window holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from hyperrec.monitoring.events import MONITOR_COLUMNS, normalize_events


def select_window(frame: pd.DataFrame, start: int | None = None, end: int | None = None) -> pd.DataFrame:
    """Rows with start <= timestamp < end (either bound may be None)."""
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= frame["timestamp"].to_numpy() >= start
    if end is not None:
        mask &= frame["timestamp"].to_numpy() < end
    return frame.loc[mask].reset_index(drop=True)


def last_days_bounds(frame: pd.DataFrame, days: float) -> tuple[int | None, int | None]:
    """[newest - days, newest] as half-open Unix-second bounds; (None, None) for an empty frame."""
    if frame.empty:
        return None, None
    newest = int(frame["timestamp"].max())
    return newest - int(days * 86400) + 1, newest + 1


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(int(seconds), tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Window:
    """One side of the comparison: its events and where they came from."""

    name: str
    frame: pd.DataFrame
    source: str = "in-memory frame"
    start: int | None = None
    end: int | None = None

    @classmethod
    def of(cls, name: str, frame: pd.DataFrame, source: str = "in-memory frame",
           start: int | None = None, end: int | None = None) -> Window:
        """Normalize the frame (if needed) and keep the rows inside [start, end)."""
        if not set(MONITOR_COLUMNS) <= set(frame.columns):
            frame = normalize_events(frame, source=source)
        return cls(name=name, frame=select_window(frame, start, end), source=source, start=start, end=end)

    def describe(self) -> dict[str, Any]:
        """Time range, row/user/item counts and the event mix: the summary's record of this window."""
        frame = self.frame
        stamps = frame["timestamp"]
        return {
            "name": self.name,
            "source": self.source,
            "requested_start": _iso(self.start),
            "requested_end": _iso(self.end),
            "first_event": _iso(int(stamps.min())) if len(frame) else None,
            "last_event": _iso(int(stamps.max())) if len(frame) else None,
            "start_unix": int(stamps.min()) if len(frame) else None,
            "end_unix": int(stamps.max()) + 1 if len(frame) else None,
            "rows": len(frame),
            "users": int(frame["user_id"].nunique()),
            "items": int(frame["item_id"].nunique()),
            "events": {str(k): int(v) for k, v in frame["event"].value_counts().sort_index().items()},
        }
