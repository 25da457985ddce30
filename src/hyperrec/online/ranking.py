"""Business rules over a score vector: candidates, seen items, popularity blend, diversity cap, top-k.

Small pure functions over numpy arrays, in the order the transformer applies them::

    eligible = eligible_mask(n_items, scores, exclude=seen, candidates=...)
    blended  = blend_popularity(scores, popularity, weight, eligible)
    top      = top_k_diverse(blended, eligible, k, category_codes, max_per_category)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    """Items that may be recommended: in ``candidates`` (when given), not in ``exclude``, with a finite score."""
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


def blend_popularity(scores: np.ndarray, popularity: np.ndarray, weight: float, mask: np.ndarray) -> np.ndarray:
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
    category_codes: Sequence[np.ndarray] | None = None,
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
        take = min(k, eligible.size)
        part = np.argpartition(-eligible_scores, take - 1)[:take]
        # Everything tied with the k-th score competes, so ties break by item index, not by partition luck.
        tied = np.flatnonzero(eligible_scores >= eligible_scores[part].min())
        order = tied[np.lexsort((eligible[tied], -eligible_scores[tied]))][:take]
        chosen = eligible[order]
        return RankedItems(chosen.astype(np.int64), scores[chosen].astype(np.float64))
    # Score order (ties by item index, for determinism), then a greedy pass under the cap.
    order = eligible[np.lexsort((eligible, -eligible_scores))]
    counts: dict[int, int] = {}
    chosen_list: list[int] = []
    skipped: list[int] = []
    for item in _as_ints(order):
        codes = category_codes[item].tolist()
        if all(counts.get(c, 0) < max_per_category for c in codes):
            chosen_list.append(item)
            for c in codes:
                counts[c] = counts.get(c, 0) + 1
            if len(chosen_list) == k:
                break
        else:
            skipped.append(item)
    if len(chosen_list) < k:
        chosen_list += skipped[: k - len(chosen_list)]
        chosen_list.sort(key=lambda i: (-scores[i], i))
    chosen = np.array(chosen_list, dtype=np.int64)
    return RankedItems(chosen, scores[chosen].astype(np.float64))


def _as_ints(order: np.ndarray, chunk: int = 256) -> Iterator[int]:
    """``order``'s items as Python ints, converted a chunk at a time (the greedy pass usually stops early)."""
    for start in range(0, order.size, chunk):
        yield from order[start:start + chunk].tolist()


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
