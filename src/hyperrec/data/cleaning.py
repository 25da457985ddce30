"""Remove exact duplicate events and bot-like bursts, quarantining what is removed.

Burst detection looks for more than ``bot_max_events`` events from one user inside any window of
``bot_window_seconds``. MovieLens users rate many movies at once when they sign up (ml-latest-small has a
user with 392 ratings inside 10 seconds), so the default threshold is set above what real sign-up sessions
produce: see docs/DATA.md for the measurement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hyperrec.data.quarantine import Quarantine

#: Two events are exact duplicates when all of these agree (the query keeps distinct searches apart).
DUPLICATE_KEY = ("user_id", "item_id", "event", "timestamp", "query")


def drop_duplicates(interactions: pd.DataFrame, quarantine: Quarantine) -> pd.DataFrame:
    """Quarantine every repeat of an exact duplicate event (``duplicate``), keeping the first."""
    repeated = interactions.duplicated(list(DUPLICATE_KEY), keep="first")
    quarantine.add_rows(interactions[repeated], reason="duplicate", field_name=None)
    return interactions[~repeated].reset_index(drop=True)


def burst_mask(
    user_ids: pd.Series, timestamps: pd.Series, max_events: int, window_seconds: int
) -> np.ndarray:
    """True for each event inside a window of ``window_seconds`` holding more than ``max_events`` events
    of the same user.

    Vectorized: events are sorted by (user, time) and keyed so that different users can never fall into one
    window; for every event, a binary search finds how many events start within ``window_seconds`` of it.
    Each window found too full marks all of its events, via a difference array.

    Args:
        user_ids: the user of each event.
        timestamps: the event times in seconds, aligned with ``user_ids``.
        max_events: the most events one user may have in a window.
        window_seconds: the window length.

    Returns:
        A boolean array, one entry per event in input order.
    """
    codes = pd.factorize(user_ids)[0].astype(np.int64)
    times = timestamps.to_numpy(dtype=np.int64)
    if len(times) == 0:
        return np.zeros(0, dtype=bool)
    span = int(times.max() - times.min()) + window_seconds + 1
    keys = codes * span + (times - times.min())
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    window_end = np.searchsorted(sorted_keys, sorted_keys + window_seconds, side="left")
    starts = np.nonzero(window_end - np.arange(len(sorted_keys)) > max_events)[0]
    coverage = np.zeros(len(sorted_keys) + 1, dtype=np.int64)
    np.add.at(coverage, starts, 1)
    np.add.at(coverage, window_end[starts], -1)
    in_burst = np.cumsum(coverage[:-1]) > 0
    mask = np.zeros(len(times), dtype=bool)
    mask[order] = in_burst
    return mask


def drop_bot_bursts(interactions: pd.DataFrame, max_events: int, window_seconds: int,
                    quarantine: Quarantine) -> pd.DataFrame:
    """Quarantine the events of bot-like bursts (``bot_burst``)."""
    burst = burst_mask(interactions["user_id"], interactions["timestamp"], max_events, window_seconds)
    quarantine.add_rows(interactions[burst], reason="bot_burst", field_name=None)
    return interactions[~burst].reset_index(drop=True)


def drop_saturated_users(
    interactions: pd.DataFrame, catalogue_size: int, quarantine: Quarantine
) -> pd.DataFrame:
    """Quarantine every event of users who touched every item of the catalogue (``touched_every_item``).

    Training needs negatives a user never touched; such a user has none, so one of them would otherwise stop
    the whole run. The quarantine records carry the user's pseudonym (never the raw id).
    """
    items_per_user = interactions.dropna(subset=["item_id"]).groupby("user_id")["item_id"].nunique()
    saturated = interactions["user_id"].isin(items_per_user.index[items_per_user >= catalogue_size])
    quarantine.add_rows(interactions[saturated], reason="touched_every_item", field_name="user_id")
    return interactions[~saturated].reset_index(drop=True)
