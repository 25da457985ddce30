"""Monitoring features: per-event and per-user aggregates whose distributions the drift checks compare.

Rows keep their ``user_id`` so that significance can be judged by permuting *users* between the windows:
the events of one user are not independent of each other, and a heavy user must not look like drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hyperrec.monitoring.events import IMPRESSION

SECONDS_PER_DAY = 86400
OTHER_ITEM = "__other__"


def behaviour_events(frame: pd.DataFrame) -> pd.DataFrame:
    """What users did: every event except impressions (which are what the system showed)."""
    return frame.loc[frame["event"] != IMPRESSION]


def item_reference_counts(reference_events: pd.DataFrame) -> pd.Series:
    """item_id -> number of reference behaviour events on it."""
    items = reference_events["item_id"].dropna()
    return items.value_counts()


def event_features(events: pd.DataFrame, reference_counts: pd.Series, *, is_reference: bool) -> pd.DataFrame:
    """One row per behaviour event: user_id, event, rating, dwell_seconds (log1p), item_popularity (log1p).

    ``item_popularity`` is the number of reference events on the event's item. For reference rows the event
    itself is left out of the count (leave-one-out), so that a window compared with itself, or two random
    halves of one period, have the same distribution: without it every reference item would count at least 1
    and every unseen current item 0, a difference made by the measurement, not by the users.

    Args:
        events: the window's behaviour events (monitoring frame).
        reference_counts: item_id -> number of reference events.
        is_reference: whether ``events`` is the reference window (leave-one-out counts).

    Returns:
        One row per event, in input order; NaN where a value does not apply.
    """
    counts = events["item_id"].map(reference_counts).astype("float64")
    has_item = events["item_id"].notna().to_numpy()
    counts = counts.fillna(0.0).to_numpy()
    if is_reference:
        counts = np.maximum(counts - 1.0, 0.0)
    popularity = np.where(has_item, np.log1p(counts), np.nan)
    is_rating = (events["event"] == "rating").to_numpy()
    rating = np.where(is_rating, events["value"].to_numpy(dtype="float64"), np.nan)
    dwell = events["dwell_seconds"].to_numpy(dtype="float64")
    dwell = np.where(np.isfinite(dwell) & (dwell >= 0), np.log1p(np.clip(dwell, 0, None)), np.nan)
    return pd.DataFrame(
        {
            "user_id": events["user_id"].to_numpy(),
            "event": events["event"].astype(str).to_numpy(),
            "rating": rating,
            "dwell_seconds": dwell,
            "item_popularity": popularity,
        }
    )


def user_features(events: pd.DataFrame) -> pd.DataFrame:
    """One row per user: user_activity = log1p(events per active UTC day), independent of the window
    length."""
    if events.empty:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "user_activity": pd.Series(dtype="float64")})
    days = events["timestamp"].to_numpy() // SECONDS_PER_DAY
    grouped = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "day": days}).groupby("user_id")["day"]
    per_day = grouped.size() / grouped.nunique()
    return pd.DataFrame({"user_id": per_day.index.astype(str), "user_activity": np.log1p(per_day.to_numpy())})


def impression_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per impression: user_id, clicked (1.0 when a click on the same request and item exists).

    Impressions and clicks are matched on (request_id, item_id); records without a request_id fall back to
    (user_id, item_id) inside the window.

    Args:
        frame: a window's monitoring frame.

    Returns:
        One row per impression, in input order.
    """
    impressions = frame.loc[frame["event"] == IMPRESSION]
    clicks = frame.loc[frame["event"] == "click"]

    def keys(rows: pd.DataFrame) -> pd.Series:
        request = rows["request_id"].astype("string")
        scope = request.where(request.notna(), "user:" + rows["user_id"].astype(str))
        return scope + "\x1f" + rows["item_id"].astype("string").fillna("")

    clicked = (
        keys(impressions).isin(set(keys(clicks)))
        if len(clicks)
        else pd.Series(False, index=impressions.index)
    )
    return pd.DataFrame(
        {"user_id": impressions["user_id"].to_numpy(), "clicked": clicked.to_numpy(dtype="float64")}
    )


def predictions_from_feedback(frame: pd.DataFrame) -> pd.DataFrame:
    """The served recommendations of a feedback window: user_id, item_id, score (the impression's value)."""
    impressions = frame.loc[frame["event"] == IMPRESSION]
    return pd.DataFrame(
        {
            "user_id": impressions["user_id"].astype(str).to_numpy(),
            "item_id": impressions["item_id"].astype("string").to_numpy(),
            "score": impressions["value"].to_numpy(dtype="float64"),
        }
    )


def prediction_features(
    reference: pd.DataFrame, current: pd.DataFrame, top_n: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of served recommendations: user_id, prediction_score, recommended_item (top-N of both windows or
    other).

    Predictions need ``item_id``; ``score`` and ``user_id`` are optional (without user_id every row is its own
    unit in the permutation test).

    Args:
        reference: the reference window's recommendations (item_id, optional user_id and score).
        current: the current window's recommendations.
        top_n: how many of the most frequent items keep their id; the others become ``OTHER_ITEM``.

    Returns:
        The (reference, current) tables.
    """
    items = pd.concat([reference["item_id"], current["item_id"]], ignore_index=True).astype("string")
    top = set(items.value_counts().head(top_n).index)

    def build(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
        """One window's table; rows without a user_id column get ``<prefix><row>`` as their own unit.

        Args:
            frame: the window's recommendations.
            prefix: the unit-name prefix for rows without a user.

        Returns:
            user_id, prediction_score (NaN without scores), recommended_item.
        """
        item = frame["item_id"].astype("string")
        users = (
            frame["user_id"].astype(str).to_numpy()
            if "user_id" in frame
            else np.array([f"{prefix}{i}" for i in range(len(frame))], dtype=object)
        )
        score = (
            pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype="float64")
            if "score" in frame else np.full(len(frame), np.nan)
        )
        return pd.DataFrame(
            {
                "user_id": users,
                "prediction_score": score,
                "recommended_item": np.where(
                    item.isin(top).fillna(False).to_numpy(), item.to_numpy(), OTHER_ITEM
                ),
            }
        )

    return build(reference, "ref-row-"), build(current, "cur-row-")


def consumed_item_embeddings(events: pd.DataFrame, item_embeddings: np.ndarray) -> np.ndarray:
    """Embeddings of the distinct items with a behaviour event in the window (rows with a known item_idx)."""
    idx = events["item_idx"].to_numpy()
    idx = np.unique(idx[(idx >= 0) & (idx < len(item_embeddings))])
    return np.asarray(item_embeddings[idx], dtype="float64")


def user_item_pairs(events: pd.DataFrame, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(user code, item_idx) of every behaviour event on a known item: the units the item check permutes."""
    idx = events["item_idx"].to_numpy()
    known = (idx >= 0) & (idx < n_items)
    codes = pd.factorize(events["user_id"].to_numpy()[known])[0]
    return codes, idx[known]


def mean_profile_embeddings(events: pd.DataFrame, item_embeddings: np.ndarray) -> np.ndarray:
    """One row per user: the mean embedding of the items the user interacted with in the window."""
    idx = events["item_idx"].to_numpy()
    known = (idx >= 0) & (idx < len(item_embeddings))
    if not known.any():
        return np.empty((0, item_embeddings.shape[1]))
    users, codes = np.unique(events["user_id"].to_numpy()[known], return_inverse=True)
    sums = np.zeros((len(users), item_embeddings.shape[1]))
    np.add.at(sums, codes, np.asarray(item_embeddings[idx[known]], dtype="float64"))
    return sums / np.bincount(codes, minlength=len(users))[:, None]
