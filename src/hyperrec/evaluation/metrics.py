"""Ranking metrics as pure functions of one user's ranks.

Every function takes the 1-based ranks of the user's relevant items in the ordered candidate list (one rank
per relevant item; ``inf`` for a relevant item that cannot be ranked at all, e.g. one the train mask removed)
and, where the metric needs it, ``n_relevant``, the number of relevant items. Leave-last-out has one relevant
item per user; the global-temporal split can have several, which is why every function accepts many ranks.
Keeping them pure (no score matrices, no models) is what lets the tests check them against hand-computed
values and lets ``recompute.py`` stay independent of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Metrics reported at every cutoff K, in the order tables show them.
CUTOFF_METRICS = ("hr", "ndcg", "map", "recall")


def _checked(ranks: Sequence[float] | np.ndarray, n_relevant: int | None = None,
             k: int | None = None) -> np.ndarray:
    """Validate the inputs once so that a caller's bug fails loudly instead of skewing an average."""
    values = np.asarray(ranks, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("ranks must be a 1-D sequence")
    if np.any(np.isnan(values)) or np.any(values < 1):
        raise ValueError("ranks are 1-based: every rank must be >= 1 (inf for an unrankable item)")
    if n_relevant is not None and (n_relevant < 1 or len(values) > n_relevant):
        raise ValueError("n_relevant must be >= 1 and >= the number of ranks")
    if k is not None and k < 1:
        raise ValueError("the cutoff k must be >= 1")
    return values


def _discounts(ranks: np.ndarray) -> np.ndarray:
    return 1.0 / np.log2(ranks + 1.0)


def hit_rate(ranks: Sequence[float] | np.ndarray, k: int) -> float:
    """1 if any relevant item is in the top ``k``, else 0 (HR@K)."""
    values = _checked(ranks, k=k)
    return float(np.any(values <= k))


def recall(ranks: Sequence[float] | np.ndarray, n_relevant: int, k: int) -> float:
    """Share of the relevant items found in the top ``k`` (Recall@K)."""
    values = _checked(ranks, n_relevant, k)
    return float(np.count_nonzero(values <= k) / n_relevant)


def ndcg(ranks: Sequence[float] | np.ndarray, n_relevant: int, k: int) -> float:
    """NDCG@K with binary gains; the ideal DCG places min(n_relevant, k) hits at the top.

    Normalizing by min(n_relevant, k) rather than n_relevant keeps a perfect top-K list at 1.0 even when a
    user has more relevant items than fit in the list.
    """
    values = _checked(ranks, n_relevant, k)
    dcg = _discounts(values[values <= k]).sum()
    ideal = _discounts(np.arange(1, min(n_relevant, k) + 1, dtype=np.float64)).sum()
    return float(dcg / ideal)


def average_precision(ranks: Sequence[float] | np.ndarray, n_relevant: int, k: int) -> float:
    """AP@K: the mean over hits in the top ``k`` of precision at the hit, divided by min(n_relevant, k)."""
    values = _checked(ranks, n_relevant, k)
    hits = np.sort(values[values <= k])
    precisions = np.arange(1, len(hits) + 1, dtype=np.float64) / hits
    return float(precisions.sum() / min(n_relevant, k))


def reciprocal_rank(ranks: Sequence[float] | np.ndarray) -> float:
    """1 / rank of the best-ranked relevant item (0 when none can be ranked); MRR is its mean."""
    values = _checked(ranks)
    if len(values) == 0:
        return 0.0
    return float(1.0 / values.min())


def auc(n_lower: int, n_tied: int, n_negatives: int) -> float:
    """Sampled AUC of one positive: share of negatives scored below it, a tie counting as half.

    Counting ties as 1/2 is the expectation under random tie-breaking, so a model that scores everything
    equal gets 0.5, not 0 or 1.
    """
    if n_negatives < 1 or n_lower < 0 or n_tied < 0 or n_lower + n_tied > n_negatives:
        raise ValueError("need 0 <= n_lower + n_tied <= n_negatives and n_negatives >= 1")
    return (n_lower + 0.5 * n_tied) / n_negatives


def cutoff_metrics(ranks: Sequence[float] | np.ndarray, n_relevant: int,
                   k_values: Sequence[int]) -> dict[str, float]:
    """Every cutoff metric at every K plus MRR for one user, keyed like metrics.json ("ndcg@10", "mrr")."""
    values = _checked(ranks, n_relevant)
    result: dict[str, float] = {}
    for k in k_values:
        result[f"hr@{k}"] = hit_rate(values, k)
        result[f"ndcg@{k}"] = ndcg(values, n_relevant, k)
        result[f"map@{k}"] = average_precision(values, n_relevant, k)
        result[f"recall@{k}"] = recall(values, n_relevant, k)
    result["mrr"] = reciprocal_rank(values)
    return result


def standard_error(per_user: Sequence[float] | np.ndarray) -> float:
    """Standard error of a mean over users (sample std / sqrt(n)); 0 for fewer than two users.

    Users are the unit of sampling, so this is the noise level to compare two models' averages against.
    """
    values = np.asarray(per_user, dtype=np.float64)
    if len(values) < 2:
        return 0.0
    return float(values.std(ddof=1) / np.sqrt(len(values)))
