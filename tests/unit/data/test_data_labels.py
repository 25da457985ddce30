"""The implicit-positive rule for every event type."""

import pandas as pd

from hyperrec.data.labels import label_events

EVENTS = pd.DataFrame({
    "event": ["rating", "rating", "click", "purchase", "view", "view", "view", "search", "search"],
    "item_id": ["a", "b", "c", "d", "e", "f", "g", None, "h"],
    "value": [4.0, 2.5, None, None, None, None, None, None, None],
    "dwell_seconds": [None, None, None, None, 30.0, 5.0, None, None, None],
})


def test_every_rating_is_positive_without_a_threshold():
    assert label_events(EVENTS, None, 10.0).tolist() == [True, True, True, True, True, False, False, False, False]


def test_ratings_below_min_rating_are_not_positive():
    assert label_events(EVENTS, 3.5, 10.0).tolist()[:2] == [True, False]


def test_views_need_the_dwell_time_and_searches_are_never_positive():
    labels = label_events(EVENTS, None, 30.0)
    assert labels.tolist()[4:] == [True, False, False, False, False]
    assert labels.dtype == bool
