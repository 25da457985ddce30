"""Splits in time: no validation or test event precedes the same user's train events."""

import logging

import numpy as np
import pandas as pd

from hyperrec.config import PrepConfig
from hyperrec.data.split import split_positives


def _positives(rows: list[tuple[str, int, int]], label: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_idx", "timestamp"])
    return frame.assign(label=label, item_id=frame["item_idx"].astype(str))


def _random_interactions(seed: int = 0, users: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", int(rng.integers(0, 50)), int(rng.integers(0, 1000)))
            for u in range(users) for _ in range(int(rng.integers(1, 12)))]
    return _positives(rows)


def _assert_no_later_split_precedes_train(frames: dict[str, pd.DataFrame]) -> None:
    last_train = frames["train"].groupby("user_id")["timestamp"].max()
    first_val = frames["validation"].groupby("user_id")["timestamp"].min()
    first_test = frames["test"].groupby("user_id")["timestamp"].min()
    last_val = frames["validation"].groupby("user_id")["timestamp"].max()
    assert (first_val >= last_train.reindex(first_val.index).fillna(-1)).all()
    assert (first_test >= last_train.reindex(first_test.index).fillna(-1)).all()
    assert (first_test >= last_val.reindex(first_test.index).fillna(-1)).all()


def test_leave_last_out_holds_out_the_last_two_positives_per_user():
    frame = _positives([("a", 1, 10), ("a", 2, 30), ("a", 3, 20), ("a", 4, 40), ("b", 5, 5), ("b", 6, 6)])
    split = split_positives(frame, PrepConfig(), has_timestamps=True, seed=0)
    assert split.frames["test"]["item_idx"].tolist() == [4]
    assert split.frames["validation"]["item_idx"].tolist() == [2]
    assert split.frames["train"]["item_idx"].tolist() == [1, 3, 5, 6]
    assert split.train_only_users == 1  # b has fewer than three positives
    assert split.method == "leave_last_out"


def test_ties_in_time_are_broken_by_item_index():
    frame = _positives([("a", 9, 10), ("a", 7, 10), ("a", 8, 10)])
    split = split_positives(frame, PrepConfig(), has_timestamps=True, seed=0)
    assert [split.frames[s]["item_idx"].tolist() for s in ("train", "validation", "test")] == [[7], [8], [9]]


def test_non_positive_and_itemless_events_never_enter_a_split():
    frame = pd.concat([_positives([("a", 1, 1), ("a", 2, 2), ("a", 3, 3)]),
                       _positives([("a", 4, 4)], label=False), _positives([("a", -1, 5)])])
    split = split_positives(frame, PrepConfig(), has_timestamps=True, seed=0)
    assert sorted(pd.concat(split.frames.values())["item_idx"]) == [1, 2, 3]


def test_no_validation_or_test_event_precedes_train_under_leave_last_out():
    split = split_positives(_random_interactions(), PrepConfig(), has_timestamps=True, seed=0)
    _assert_no_later_split_precedes_train(split.frames)
    assert sum(split.sizes().values()) == len(_random_interactions())


def test_global_temporal_cuts_the_time_axis():
    prep = PrepConfig(split="global_temporal", temporal_validation_fraction=0.2, temporal_test_fraction=0.1)
    split = split_positives(_random_interactions(), prep, has_timestamps=True, seed=0)
    assert split.frames["train"]["timestamp"].max() < split.frames["validation"]["timestamp"].min()
    assert split.frames["validation"]["timestamp"].max() < split.frames["test"]["timestamp"].min()
    assert split.method == "global_temporal"
    _assert_no_later_split_precedes_train(split.frames)


def test_without_timestamps_a_seeded_random_leave_one_out_is_used_and_logged(caplog):
    frame = _positives([(u, i, 0) for u in ("a", "b") for i in range(6)])
    first = split_positives(frame, PrepConfig(), has_timestamps=False, seed=3)
    again = split_positives(frame, PrepConfig(), has_timestamps=False, seed=3)
    assert first.method == "random_leave_one_out"
    assert "random leave-one-out" in caplog.text
    assert first.sizes() == {"train": 8, "validation": 2, "test": 2}
    pd.testing.assert_frame_equal(first.frames["test"], again.frames["test"])
    assert caplog.records[0].levelno == logging.WARNING
