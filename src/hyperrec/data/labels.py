"""The event types, and which events count as an implicit positive for an item.

One rule for every event type, so that ratings, clicks and views can be mixed in one training set:
a rating at or above ``min_rating`` (every rating when it is None), any click or purchase, a view that
lasted at least ``min_dwell_seconds``, and never a search (a query is not a judgement of an item).
"""

from __future__ import annotations

import pandas as pd

#: Every event type an interaction may have (generic format, feedback log); a search names no item.
EVENT_TYPES = ("view", "click", "rating", "purchase", "search")
#: Event types that are positive whatever their value.
ALWAYS_POSITIVE = ("click", "purchase")


def label_events(interactions: pd.DataFrame, min_rating: float | None, min_dwell_seconds: float) -> pd.Series:
    """Boolean ``label`` per event; events without an item are never positive."""
    event = interactions["event"]
    rating_ok = interactions["value"] >= min_rating if min_rating is not None else True
    positive = (
        ((event == "rating") & rating_ok)
        | event.isin(ALWAYS_POSITIVE)
        | ((event == "view") & (interactions["dwell_seconds"] >= min_dwell_seconds))
    )
    return (positive & interactions["item_id"].notna()).astype(bool)


def is_positive(event: str, value: float, dwell_seconds: float, min_rating: float | None,
                min_dwell_seconds: float) -> bool:
    """The same rule for one event of a known item (the serving feedback log labels records one by one)."""
    if event == "rating":
        return min_rating is None or value >= min_rating
    if event == "view":
        return dwell_seconds >= min_dwell_seconds
    return event in ALWAYS_POSITIVE
