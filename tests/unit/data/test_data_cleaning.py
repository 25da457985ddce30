"""Exact duplicates and bot-like bursts are quarantined, real users are not."""

import numpy as np
import pandas as pd

from hyperrec.data.cleaning import burst_mask, drop_bot_bursts, drop_duplicates
from hyperrec.data.quarantine import Quarantine


def _events(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp"])
    return frame.assign(query=None, _file="interactions.csv", _row=np.arange(2, len(frame) + 2))


def test_exact_duplicates_keep_the_first_and_quarantine_the_rest():
    frame = _events([("u", "a", "click", 10), ("u", "a", "click", 10), ("u", "a", "view", 10),
                     ("u", "a", "click", 11), ("u", "a", "click", 10)])
    quarantine = Quarantine()
    kept = drop_duplicates(frame, quarantine)
    assert kept["_row"].tolist() == [2, 4, 5]
    assert [(r["row"], r["reason"]) for r in quarantine.records] == [(3, "duplicate"), (6, "duplicate")]


def test_searches_with_different_queries_at_the_same_second_are_not_duplicates():
    frame = _events([("u", None, "search", 10), ("u", None, "search", 10)])
    frame["query"] = ["teapot", "mug"]
    assert len(drop_duplicates(frame, Quarantine())) == 2


def test_more_than_max_events_inside_the_window_is_a_burst():
    users = pd.Series(["bot"] * 6 + ["human"] * 6)
    times = pd.Series([0, 1, 2, 3, 4, 5] + [0, 100, 200, 300, 400, 500])
    mask = burst_mask(users, times, max_events=5, window_seconds=60)
    assert mask.tolist() == [True] * 6 + [False] * 6


def test_exactly_max_events_is_not_a_burst_and_only_the_dense_part_is_flagged():
    times = pd.Series([0, 10, 20, 30, 1000, 1001, 1002, 1003, 1004])
    mask = burst_mask(pd.Series(["u"] * 9), times, max_events=4, window_seconds=60)
    assert mask.tolist() == [False] * 4 + [True] * 5


def test_windows_never_span_two_users():
    users = pd.Series(["a", "a", "a", "b", "b", "b"])
    times = pd.Series([0, 1, 2, 3, 4, 5])
    assert not burst_mask(users, times, max_events=3, window_seconds=60).any()


def test_bursts_are_quarantined_with_their_rows():
    frame = _events([("u", str(i), "click", 100 + i) for i in range(4)] + [("v", "x", "click", 100)])
    quarantine = Quarantine()
    kept = drop_bot_bursts(frame, max_events=3, window_seconds=10, quarantine=quarantine)
    assert kept["user_id"].tolist() == ["v"]
    assert quarantine.counts_by_reason() == {"bot_burst": 4}
