"""Ranking from the predictor's in-graph top K instead of the whole score vector, with the same answers.

The predictor's ``top_ids``/``top_scores`` (``hyperrec.export.next_item_topk``) are the first K items of the
full ranking order (score descending, ties by lower item index) among the items outside the request's encoded
history. ``sparse_scores`` puts them back into a catalogue-wide vector (−inf elsewhere), so the business rules
in ``hyperrec.online.ranking`` run unchanged. That gives the same answer as the full vector exactly when the
rules decide within the prefix:

- no candidate list, no popularity blend and no cold-item slot (all three look at items outside the prefix):
  ``top_k_applies``;
- the greedy diversity pass filled all ``depth`` places inside the prefix without the soft fill, or the prefix
  is the whole catalogue: ``decided_by_prefix``. Otherwise the caller asks for the full scores.
"""

from __future__ import annotations

import numpy as np

from hyperrec.online.catalogue import Catalogue
from hyperrec.online.ranking import top_k_diverse
from hyperrec.online.settings import ServingConfig


def top_k_applies(
    settings: ServingConfig, *, has_candidates: bool, depth: int, k: int, has_cold_slot: bool = False
) -> bool:
    """Whether a request may be ranked from a top-``k`` prefix at all (before looking at the prefix)."""
    return (settings.predictor.use_top_k and settings.exclude_seen and settings.popularity_weight == 0.0
            and not has_candidates and not has_cold_slot and depth <= k)


def sparse_scores(n_items: int, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """A float32 [n_items] vector holding ``scores`` at ``ids`` and −inf everywhere else."""
    vector = np.full(n_items, -np.inf, dtype=np.float32)
    vector[np.asarray(ids, dtype=np.int64)] = scores
    return vector


def decided_by_prefix(
    ids: np.ndarray, scores: np.ndarray, history_idx: np.ndarray, catalogue: Catalogue, settings: ServingConfig, *,
    depth: int,
) -> bool:
    """Whether the prefix ``ids``/``scores`` (best first) decides the same ``depth`` items as the full vector.

    Runs the rules on the K prefix items only: their order (score, then item index) is the full ranking's, so
    positions stand in for item indices.
    """
    if ids.size >= catalogue.n_items:
        return True  # the prefix is every item the graph did not exclude
    keep = np.isfinite(scores) & ~np.isin(ids, history_idx)
    items = np.asarray(ids, dtype=np.int64)[keep]
    if items.size < depth:
        return False
    cap = settings.max_per_category
    if cap is None:
        return True
    codes = [catalogue.category_codes[i] for i in items.tolist()]
    ranked = top_k_diverse(np.asarray(scores, dtype=np.float64)[keep], np.ones(items.size, dtype=bool), depth,
                           codes, cap)
    # The soft fill adds capped-out items, so a list that respects the cap was filled by the greedy pass alone.
    chosen = [codes[i] for i in ranked.items.tolist()]
    counts = np.bincount(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    return bool(ranked.items.size >= depth and (counts.size == 0 or counts.max() <= cap))
