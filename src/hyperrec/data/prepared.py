"""The prepared-data folder: the one contract between data prep, training, evaluation and serving.

Layout (all Parquet unless noted), written by ``hyperrec.data.prep.run_data_prep``:

- ``items.parquet``: item_id (str), title (str), text (str, PII-scrubbed tags/description), categories
  (list[str]), language (str), item_idx (int32, equal to the row number: the catalogue order every score
  vector follows).
- ``interactions.parquet``: every clean event: user_id (str, pseudonymized), item_id (str or null for
  searches), item_idx (int32, -1 when null), event (str), timestamp (int64 Unix seconds), value (float),
  dwell_seconds (float), query (str, PII-scrubbed, or null), label (bool: an implicit positive).
- ``train.parquet``, ``validation.parquet``, ``test.parquet``: the positive item events, same columns,
  split in time (no event of a later split precedes its user's events in an earlier one).
- ``segments.parquet``: user_id, segment (int).
- ``examples.parquet``: user_id, item_idx (the positive), timestamp, negatives (list[int32]).
- ``profiles.parquet``: user_id, profile (str): the profile text built from train history.
- ``quarantine.jsonl``: one JSON object a rejected row: file, row, field, reason, and the raw values
  with free text removed.
- ``data_report.json`` and ``data_report.md``: rows in/out per step, quarantine by reason, segments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hyperrec.data.files import read_frame
from hyperrec.errors import DataError

SPLITS = ("train", "validation", "test")
ITEMS_FILE = "items.parquet"
INTERACTIONS_FILE = "interactions.parquet"
SEGMENTS_FILE = "segments.parquet"
EXAMPLES_FILE = "examples.parquet"
PROFILES_FILE = "profiles.parquet"
QUARANTINE_FILE = "quarantine.jsonl"
REPORT_JSON = "data_report.json"
REPORT_MD = "data_report.md"


@dataclass(frozen=True)
class PreparedData:
    """Read access to a prepared-data folder; tables are loaded lazily and cached."""

    root: Path

    def _read(self, name: str) -> pd.DataFrame:
        path = self.root / name
        if not path.exists():
            raise DataError("prepared data is incomplete; run data prep first", file=str(path))
        return read_frame(path, "a table written by data prep (run hyperrec data-prep again)")

    @cached_property
    def items(self) -> pd.DataFrame:
        return self._read(ITEMS_FILE)

    @cached_property
    def interactions(self) -> pd.DataFrame:
        return self._read(INTERACTIONS_FILE)

    @cached_property
    def segments(self) -> pd.DataFrame:
        return self._read(SEGMENTS_FILE)

    @cached_property
    def examples(self) -> pd.DataFrame:
        return self._read(EXAMPLES_FILE)

    @cached_property
    def profiles(self) -> pd.DataFrame:
        return self._read(PROFILES_FILE)

    @property
    def split_method(self) -> str | None:
        """How data prep split the events (``data_report.json``'s split section), e.g. ``leave_last_out``, or
        ``random_leave_one_out`` when the data had no timestamps; None for a folder without a report."""
        report = self.root / REPORT_JSON
        if not report.exists():
            return None
        return json.loads(report.read_text(encoding="utf-8")).get("split", {}).get("method")

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return self._read(f"{name}.parquet")

    @property
    def n_items(self) -> int:
        return len(self.items)

    @cached_property
    def item_index(self) -> dict[str, int]:
        """item_id -> item_idx (catalogue order)."""
        return dict(zip(self.items["item_id"].astype(str), self.items["item_idx"].astype(int)))

    def histories(self, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Per user, the item indices of the given splits' events, oldest first (ties by item_idx)."""
        frame = pd.concat([self.split(s) for s in splits], ignore_index=True)
        frame = frame.sort_values(["user_id", "timestamp", "item_idx"], kind="stable")
        return {
            user: group["item_idx"].to_numpy(dtype=np.int64)
            for user, group in frame.groupby("user_id", sort=True)
        }
