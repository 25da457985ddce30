"""Business rules over a score vector: candidates, seen items, popularity blend, diversity cap, top-k.

Small pure functions over numpy arrays, in the order the transformer applies them::

    eligible = eligible_mask(n_items, scores, exclude=seen, candidates=...)
    blended  = blend_popularity(scores, popularity, weight, eligible)
    top      = top_k_diverse(blended, eligible, k, category_codes, max_per_category)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankedItems:
    """The chosen item indices, best first, with the scores that ordered them."""

    items: np.ndarray
    scores: np.ndarray


def eligible_mask(
    n_items: int,
    scores: np.ndarray | None = None,
    *,
    exclude: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Items that may be recommended: in ``candidates`` (when given), not in ``exclude``, with a finite
    score."""
    if candidates is not None:
        mask = np.zeros(n_items, dtype=bool)
        mask[np.asarray(candidates, dtype=np.int64)] = True
    else:
        mask = np.ones(n_items, dtype=bool)
    if exclude is not None and len(exclude):
        mask[np.asarray(exclude, dtype=np.int64)] = False
    if scores is not None:
        mask &= np.isfinite(scores)
    return mask


def _minmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros(values.shape, dtype=np.float64)
    if not mask.any():
        return out
    picked = values[mask].astype(np.float64)
    low, high = float(picked.min()), float(picked.max())
    out[mask] = (picked - low) / (high - low) if high > low else 0.5
    return out


def blend_popularity(
    scores: np.ndarray, popularity: np.ndarray, weight: float, mask: np.ndarray
) -> np.ndarray:
    """``(1 - w) * minmax(score) + w * minmax(log1p(popularity))`` over the eligible items; raw scores at w=0.

    Min-max over the eligible set makes the two terms comparable whatever the model's score scale.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError("popularity weight must lie in [0, 1]")
    if weight == 0.0:
        return np.where(mask, scores, -np.inf).astype(np.float64)
    popular = np.log1p(np.maximum(popularity, 0.0) * 1e6)
    blended = (1.0 - weight) * _minmax(scores, mask) + weight * _minmax(popular, mask)
    return np.where(mask, blended, -np.inf)


def top_k_diverse(
    scores: np.ndarray,
    mask: np.ndarray,
    k: int,
    category_codes: Sequence[Sequence[int]] | None = None,
    max_per_category: int | None = None,
) -> RankedItems:
    """The best ``k`` eligible items; at most ``max_per_category`` items may share any one category.

    The cap is soft: when the eligible items run out before ``k`` are chosen, the best capped-out items fill
    the remaining places (fewer answers would be worse than a less diverse list).
    """
    if k <= 0:
        raise ValueError("k must be positive")
    eligible = np.flatnonzero(mask)
    if eligible.size == 0:
        return RankedItems(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    eligible_scores = scores[eligible]
    if max_per_category is None or category_codes is None:
        chosen = eligible[_best_first(eligible_scores, eligible, k)[:k]]
        return RankedItems(chosen.astype(np.int64), scores[chosen].astype(np.float64))
    # A greedy pass under the cap along the score order (ties by item index). It usually fills k places within
    # the first few hundred items, so it walks a best-first prefix of the order, a longer one only when that
    # prefix runs out: the same items in the same order as a pass over the whole order, without sorting it.
    size = FIRST_PREFIX
    while True:
        prefix = eligible[_best_first(eligible_scores, eligible, size)]
        chosen_list, skipped = _greedy(prefix, k, category_codes, max_per_category)
        if len(chosen_list) == k or prefix.size == eligible.size:
            break
        size *= 4
    if len(chosen_list) < k:
        chosen_list += skipped[: k - len(chosen_list)]
        chosen_list.sort(key=lambda i: (-scores[i], i))
    chosen = np.array(chosen_list, dtype=np.int64)
    return RankedItems(chosen, scores[chosen].astype(np.float64))


#: Length of the first best-first prefix the diversity pass walks (then 4x longer until k are chosen).
FIRST_PREFIX = 256


def _best_first(scores: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Positions of the first ``size`` (or more) entries in score order, ties by ``index``: every entry tied
    with the ``size``-th score is included and ordered, so the result is exactly a prefix of the full
    order."""
    if size >= scores.size:
        return np.lexsort((index, -scores))
    part = np.argpartition(-scores, size - 1)[:size]
    tied = np.flatnonzero(scores >= scores[part].min())
    return tied[np.lexsort((index[tied], -scores[tied]))]


def _greedy(order: np.ndarray, k: int, category_codes: Sequence[Sequence[int]],
            cap: int) -> tuple[list[int], list[int]]:
    """The items of ``order`` taken under the cap until ``k`` are chosen, and those skipped on the way."""
    counts: dict[int, int] = {}
    chosen: list[int] = []
    skipped: list[int] = []
    for item in order.tolist():
        codes = category_codes[item]
        for c in codes:
            if counts.get(c, 0) >= cap:
                skipped.append(item)
                break
        else:
            chosen.append(item)
            for c in codes:
                counts[c] = counts.get(c, 0) + 1
            if len(chosen) == k:
                break
    return chosen, skipped


def popularity_scores(
    popularity: np.ndarray, segment_popularity: dict[int, np.ndarray], segment: int | None
) -> tuple[np.ndarray, str]:
    """Scores of the popularity fallback and its name: segment-popular first when the segment is known.

    Global popularity breaks ties (and ranks the items the segment table does not list).
    """
    glob = np.asarray(popularity, dtype=np.float64)
    glob_scaled = glob / glob.max() if glob.size and glob.max() > 0 else np.zeros_like(glob)
    if segment is not None and segment in segment_popularity:
        seg = segment_popularity[segment]
        seg_scaled = seg / seg.max() if seg.max() > 0 else seg
        return seg_scaled + 1e-3 * glob_scaled, "segment_popular"
    return glob_scaled, "popular"
