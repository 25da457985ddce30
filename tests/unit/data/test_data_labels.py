"""The implicit-positive rule for every event type."""

import math

import pandas as pd
import pytest

from hyperrec.data.labels import is_positive, label_events

EVENTS = pd.DataFrame({
    "event": ["rating", "rating", "click", "purchase", "view", "view", "view", "search", "search"],
    "item_id": ["a", "b", "c", "d", "e", "f", "g", None, "h"],
    "value": [4.0, 2.5, None, None, None, None, None, None, None],
    "dwell_seconds": [None, None, None, None, 30.0, 5.0, None, None, None],
})


def test_every_rating_is_positive_without_a_threshold():
    assert label_events(EVENTS, None, 10.0).tolist() == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_ratings_below_min_rating_are_not_positive():
    assert label_events(EVENTS, 3.5, 10.0).tolist()[:2] == [True, False]


def test_views_need_the_dwell_time_and_searches_are_never_positive():
    labels = label_events(EVENTS, None, 30.0)
    assert labels.tolist()[4:] == [True, False, False, False, False]
    assert labels.dtype == bool


@pytest.mark.parametrize(("min_rating", "min_dwell"), [(None, 10.0), (3.5, 10.0), (None, 30.0)])
def test_one_event_at_a_time_gives_the_same_labels(min_rating, min_dwell):
    """The feedback log labels records one by one (hyperrec.monitoring.events) with the same rule."""
    one_by_one = [
        is_positive(row.event, math.nan if pd.isna(row.value) else row.value,
                    math.nan if pd.isna(row.dwell_seconds) else row.dwell_seconds, min_rating, min_dwell)
        for row in EVENTS.itertuples()
    ]
    with_item = EVENTS["item_id"].notna().tolist()
    assert [label and known for label, known in zip(one_by_one, with_item)] == label_events(
        EVENTS, min_rating, min_dwell).tolist()
