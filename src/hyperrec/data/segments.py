"""Behavioural user segments: K-Means on standardized activity features, k chosen by silhouette score.

Segments let evaluation report quality per kind of user (heavy raters vs. occasional ones, niche vs.
mainstream taste) and give models a coarse user feature that also exists for users with short histories.
Features are computed from the events a model may train on (validation/test events are left out by the
caller), so segments never carry the future.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

#: Silhouette is quadratic in the number of users; score a seeded sample of at most this many.
SILHOUETTE_SAMPLE = 5000
#: Below this many users K-Means is faster on one thread: OpenMP start-up costs more than the work
#: (610 MovieLens users: 0.2 s on one thread, 1.6 s on two busy cores).
SINGLE_THREAD_BELOW = 50_000
_SECONDS_PER_DAY = 86_400
#: Heavy-tailed counts are log-scaled before standardizing, so a few power users do not dominate.
_LOG_SCALED = ("events", "positives", "active_days")


@dataclass
class SegmentResult:
    """segments.parquet rows plus what the report shows about the choice of k."""

    assignments: pd.DataFrame
    k: int
    silhouette: dict[int, float] = field(default_factory=dict)

    def sizes(self) -> dict[int, int]:
        return {int(s): int(n) for s, n in self.assignments["segment"].value_counts().sort_index().items()}


def user_features(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per user: events, positives, mean value, active days, category entropy, mean log item popularity.

    Args:
        events: the cleaned events: user_id, item_idx, label, value, timestamp.
        items: the items table (for the categories).

    Returns:
        One row per user (index user_id, sorted), all columns float.
    """
    users = events.groupby("user_id", sort=True)
    item_events = events[events["item_idx"] >= 0]
    popularity = np.log1p(item_events["item_idx"].map(item_events["item_idx"].value_counts()))
    features = pd.DataFrame({
        "events": users.size(),
        "positives": users["label"].sum(),
        "mean_value": users["value"].mean(),
        "active_days": (events["timestamp"] // _SECONDS_PER_DAY).groupby(events["user_id"]).nunique(),
        "category_entropy": _category_entropy(item_events, items),
        "mean_log_popularity": popularity.groupby(item_events["user_id"]).mean(),
    })
    return features.astype(float)


def _category_entropy(item_events: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """Shannon entropy (nats) of the categories of a user's items: broad vs. narrow taste."""
    categories = items[["item_idx", "categories"]].explode("categories").dropna()
    pairs = item_events[["user_id", "item_idx"]].merge(categories, on="item_idx")
    counts = pairs.groupby(["user_id", "categories"]).size()
    shares = counts / counts.groupby(level="user_id").transform("sum")
    return (-shares * np.log(shares)).groupby(level="user_id").sum()


def standardize(features: pd.DataFrame) -> np.ndarray:
    """Log-scale counts, fill missing values with the column mean, then zero mean and unit variance."""
    scaled = features.copy()
    for name in _LOG_SCALED:
        scaled[name] = np.log1p(scaled[name])
    scaled = scaled.fillna(scaled.mean()).fillna(0.0)
    spread = scaled.std(ddof=0).replace(0.0, 1.0)
    return ((scaled - scaled.mean()) / spread).to_numpy()


def segment_users(features: pd.DataFrame, k_min: int, k_max: int, seed: int) -> SegmentResult:
    """K-Means for every k in [k_min, k_max] (capped below the number of users); keep the best silhouette.

    Segments are numbered by size, 0 the largest. With too few users for two clusters, everyone is in 0.

    Args:
        features: per-user features, as from ``user_features``.
        k_min: the smallest number of segments tried.
        k_max: the largest number of segments tried.
        seed: the seed of K-Means and the silhouette sample.

    Returns:
        The assignments, the chosen k and the silhouette of each k tried.
    """
    matrix = standardize(features)
    scores, labels = {}, {}
    with threadpool_limits(limits=1 if len(matrix) < SINGLE_THREAD_BELOW else None):
        for k in range(k_min, min(k_max, len(matrix) - 1) + 1):
            found = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(matrix)
            if len(np.unique(found)) < 2:
                continue
            scores[k] = float(silhouette_score(matrix, found, random_state=seed,
                                               sample_size=min(len(matrix), SILHOUETTE_SAMPLE)))
            labels[k] = found
    if not scores:
        logger.warning("too few distinct users to segment; every user is in segment 0")
        return SegmentResult(_assignments(features.index, np.zeros(len(matrix), dtype=int)), 1)
    best = max(scores, key=lambda k: (scores[k], -k))
    logger.info("segments: k=%d (silhouette %.3f)", best, scores[best])
    return SegmentResult(_assignments(features.index, _by_size(labels[best])), best, scores)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters so that 0 is the largest (ties by original label): stable across reruns."""
    values, counts = np.unique(labels, return_counts=True)
    ranking = values[np.lexsort((values, -counts))]
    renumber = np.empty(values.max() + 1, dtype=np.int32)
    renumber[ranking] = np.arange(len(ranking), dtype=np.int32)
    return renumber[labels]


def _assignments(users: pd.Index, segments: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"user_id": users.astype(str), "segment": segments.astype(np.int32)})
