"""Split the positive item events into train, validation and test, in time.

Leave-last-out is the reference protocol of the MovieLens benchmarks (docs/DATA.md): per user, sorted by
(timestamp, item_idx), the last positive is the test item and the one before it the validation item. Users
with fewer than three positives have nothing to spare and stay train-only. ``global_temporal`` cuts the
time axis instead (the last share of time is test), which mimics deployment but leaves some test users
without history. Data without timestamps can only be split at random; that is logged and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hyperrec.config import PrepConfig
from hyperrec.data.prepared import SPLITS

logger = logging.getLogger(__name__)

RANDOM_LEAVE_ONE_OUT = "random_leave_one_out"
#: A user needs this many positives to give one to validation and one to test.
MIN_POSITIVES_TO_HOLD_OUT = 3
_ORDER = ["user_id", "timestamp", "item_idx"]


@dataclass
class SplitResult:
    """The three splits, the method used, and how many users are in train only."""

    frames: dict[str, pd.DataFrame]
    method: str
    train_only_users: int

    def sizes(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


def split_positives(interactions: pd.DataFrame, prep: PrepConfig, has_timestamps: bool,
                    seed: int) -> SplitResult:
    """Split the labelled positive item events (``label`` true, ``item_idx`` >= 0).

    Args:
        interactions: the labelled events.
        prep: the split settings (``split`` and the temporal fractions).
        has_timestamps: whether the events have real timestamps; without, a seeded random leave-one-out.
        seed: the seed of the random split.

    Returns:
        The train, validation and test frames, the method used, and the train-only user count.
    """
    positives = interactions[interactions["label"] & (interactions["item_idx"] >= 0)]
    positives = positives.sort_values(_ORDER, kind="stable")
    if not has_timestamps:
        logger.warning("no timestamps: using a seeded random leave-one-out split instead of %s", prep.split)
        order = np.random.default_rng(seed).permutation(len(positives))
        return _hold_out_last(
            positives.iloc[order].sort_values("user_id", kind="stable"), RANDOM_LEAVE_ONE_OUT
        )
    if prep.split == "global_temporal":
        return _global_temporal(positives, prep.temporal_validation_fraction, prep.temporal_test_fraction)
    return _hold_out_last(positives, "leave_last_out")


def _hold_out_last(ordered: pd.DataFrame, method: str) -> SplitResult:
    """Per user (rows already in each user's order): last → test, previous → validation, rest → train."""
    users = ordered.groupby("user_id", sort=False)
    from_end = users.cumcount(ascending=False).to_numpy()
    eligible = users["user_id"].transform("size").to_numpy() >= MIN_POSITIVES_TO_HOLD_OUT
    assignment = np.where(eligible & (from_end == 0), "test",
                          np.where(eligible & (from_end == 1), "validation", "train"))
    train_only = int(ordered.loc[~eligible, "user_id"].nunique())
    return SplitResult(_frames(ordered, assignment), method, train_only)


def _global_temporal(
    positives: pd.DataFrame, validation_fraction: float, test_fraction: float
) -> SplitResult:
    """The last ``test_fraction`` of the time span is test, the share before it validation."""
    times = positives["timestamp"]
    span = float(times.max() - times.min()) if len(times) else 0.0
    test_start = times.max() - test_fraction * span
    validation_start = test_start - validation_fraction * span
    assignment = np.where(times >= test_start, "test",
                          np.where(times >= validation_start, "validation", "train"))
    frames = _frames(positives, assignment)
    held_out = set(frames["validation"]["user_id"]) | set(frames["test"]["user_id"])
    train_only = int((~frames["train"]["user_id"].drop_duplicates().isin(held_out)).sum())
    return SplitResult(frames, "global_temporal", train_only)


def _frames(positives: pd.DataFrame, assignment: np.ndarray) -> dict[str, pd.DataFrame]:
    return {
        name: positives[assignment == name].sort_values(_ORDER, kind="stable").reset_index(drop=True)
        for name in SPLITS
    }
