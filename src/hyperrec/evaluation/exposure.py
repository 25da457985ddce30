"""Item-side exposure: which items the top-K lists show, against how often users interacted with them.

Pure functions over item-index arrays, shared by the fairness audit. Popularity is the number of events an
item has in the splits the models could see (the evaluated split's history splits); items are ranked by it,
most popular first (ties by catalogue order), and cut into ``n_bins`` bins of equal item count, so bin 1 of
10 is the most popular decile of the catalogue. The *head* is the most popular ``HEAD_FRACTION`` of the items;
everything else is the long tail.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Share of the catalogue (most popular first) that counts as the head; the rest is the long tail.
HEAD_FRACTION = 0.2


def popularity_bins(counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Per item, its 0-based popularity bin (0: most popular); equal item counts per bin (±1)."""
    order = np.lexsort((np.arange(len(counts)), -np.asarray(counts)))
    bins = np.empty(len(counts), dtype=np.int64)
    for index, chunk in enumerate(np.array_split(order, n_bins)):
        bins[chunk] = index
    return bins


def head_items(counts: np.ndarray) -> np.ndarray:
    """Boolean mask of the head: the ``HEAD_FRACTION`` most popular items (at least one)."""
    order = np.lexsort((np.arange(len(counts)), -np.asarray(counts)))
    head = np.zeros(len(counts), dtype=bool)
    head[order[:max(1, int(round(HEAD_FRACTION * len(counts))))]] = True
    return head


def exposure_counts(lists: Sequence[np.ndarray], n_items: int, k: int) -> np.ndarray:
    """How many users' top-``k`` lists show each item."""
    shown = [np.asarray(items[:k], dtype=np.int64) for items in lists]
    flat = np.concatenate(shown) if shown else np.zeros(0, dtype=np.int64)
    return np.bincount(flat, minlength=n_items).astype(np.float64)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, (n-1)/n when one item gets everything.

    Computed on the values sorted ascending: ``G = 2 * sum_i i * x_(i) / (n * sum x) - (n + 1) / n``
    with 1-based i. Every catalogue item counts, so items no list shows pull the coefficient up.

    Args:
        values: one non-negative value per item (e.g. how often each item is shown).

    Returns:
        The coefficient; 0.0 for no values or an all-zero vector.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, len(x) + 1)
    return float(2 * np.sum(ranks * x) / (len(x) * x.sum()) - (len(x) + 1) / len(x))


def bin_shares(counts: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Share of the total of ``counts`` that falls in each bin (zeros when the total is 0)."""
    totals = np.bincount(bins, weights=counts, minlength=n_bins)
    whole = totals.sum()
    return totals / whole if whole else totals


def exposure_summary(lists: Sequence[np.ndarray], popularity: np.ndarray, k: int, n_bins: int) -> dict:
    """Gini, coverage, long-tail share and the per-bin exposure vs. interaction shares of one model.

    Args:
        lists: each user's ranked item indices.
        popularity: the interaction count of each catalogue item (its length is the catalogue size).
        k: the list cut-off.
        n_bins: the number of popularity bins.

    Returns:
        ``gini``, ``coverage``, ``long_tail_share`` and ``bins`` (per bin: items, interaction and exposure
        share).
    """
    n_items = len(popularity)
    shown = exposure_counts(lists, n_items, k)
    bins = popularity_bins(popularity, n_bins)
    exposure, interactions = bin_shares(shown, bins, n_bins), bin_shares(popularity, bins, n_bins)
    head = head_items(popularity)
    return {
        "gini": gini(shown),
        "coverage": float(np.count_nonzero(shown) / n_items) if n_items else 0.0,
        "long_tail_share": float(shown[~head].sum() / shown.sum()) if shown.sum() else 0.0,
        "bins": [
            {"bin": index + 1, "items": int(np.count_nonzero(bins == index)),
             "interaction_share": float(interactions[index]), "exposure_share": float(exposure[index])}
            for index in range(n_bins)
        ],
    }


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance of two distributions over the same bins (0 equal, 1 disjoint)."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())
