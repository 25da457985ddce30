"""Ranking from the predictor's in-graph top K instead of the whole score vector, with the same answers.

The predictor's ``top_ids``/``top_scores`` (``hyperrec.export.next_item_topk``) are the first K items of the
full ranking order (score descending, ties by lower item index) among the items outside the request's encoded
history; in a bundle with a cold slot, ``cold_id``/``cold_score`` add the best cold item outside it.
``prefix_ranking`` runs the business rules of ``hyperrec.online.ranking`` and ``hyperrec.online.cold_items``
on the prefix alone; ``sparse_scores`` puts it back into a catalogue-wide vector (−inf elsewhere) on which the
rules run unchanged. Both give the answer of the full vector exactly when the rules decide within the prefix:

- no candidate list, no popularity blend (both look at items outside the prefix), and a cold slot only when
  the graph returns the best cold item: ``top_k_applies``;
- the prefix holds at least ``position`` eligible warm items (so the slot compares the cold item with the
  same warm item as on the full vector) and the greedy diversity pass filled all ``depth`` places inside the
  prefix (plus a promoted cold item) without the soft fill (``prefix_ranking`` is None otherwise), or the
  prefix is the whole catalogue. Otherwise the caller asks for the full scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hyperrec.online.catalogue import Catalogue
from hyperrec.online.cold_items import ColdSlot, promoted_score
from hyperrec.online.ranking import RankedItems, top_k_diverse
from hyperrec.online.settings import ServingConfig


@dataclass(frozen=True)
class TopK:
    """The graph's top-k outputs: ``ids``/``scores`` [B, K] best first; ``cold_ids``/``cold_scores`` [B, 1],
    the best cold item outside the history (None when the bundle's graph has no cold outputs)."""

    ids: np.ndarray
    scores: np.ndarray
    cold_ids: np.ndarray | None = None
    cold_scores: np.ndarray | None = None

    def row(self, index: int) -> TopK:
        """Row ``index`` of every output (1-D arrays: K items, and one cold item)."""
        cold = self.cold_ids is not None and self.cold_scores is not None
        return TopK(self.ids[index], self.scores[index], self.cold_ids[index] if cold else None,
                    self.cold_scores[index] if cold else None)


def top_k_applies(
    settings: ServingConfig, *, has_candidates: bool, depth: int, k: int, has_cold_slot: bool = False,
    has_cold_outputs: bool = False,
) -> bool:
    """Whether a request may be ranked from a top-``k`` prefix at all (before looking at the prefix).

    A (non-empty) cold slot needs the best cold item, which only a graph with the cold outputs returns.
    """
    return (settings.predictor.use_top_k and settings.exclude_seen and settings.popularity_weight == 0.0
            and not has_candidates and not (has_cold_slot and not has_cold_outputs) and depth <= k)


def sparse_scores(n_items: int, top: TopK) -> np.ndarray:
    """A float32 [n_items] vector holding one row's prefix scores and best cold item, −inf everywhere else."""
    vector = np.full(n_items, -np.inf, dtype=np.float32)
    vector[np.asarray(top.ids, dtype=np.int64)] = top.scores
    if top.cold_ids is not None and top.cold_scores is not None and np.isfinite(top.cold_scores).all():
        vector[np.asarray(top.cold_ids, dtype=np.int64)] = top.cold_scores
    return vector


def prefix_ranking(
    top: TopK, history_idx: np.ndarray, catalogue: Catalogue, settings: ServingConfig, *, depth: int,
) -> RankedItems | None:
    """The first ``depth`` items (and scores) the rules rank from the full vector, computed from one row's
    prefix alone; None when the prefix cannot decide them.

    Runs the rules on the K prefix items only: their order (score, then item index) is the full ranking's, so
    positions stand in for item indices. The transformer answers from this ranking instead of running the
    rules again over a catalogue-wide vector (issue 11: that was a tenth of its CPU per request).
    """
    seen = np.zeros(catalogue.n_items, dtype=bool)  # a mask, not np.isin: that sorts or hashes on every call
    seen[np.asarray(history_idx, dtype=np.int64)] = True
    ids = np.asarray(top.ids, dtype=np.int64)
    keep = np.isfinite(top.scores) & ~seen[ids]
    items = ids[keep]
    scores = np.asarray(top.scores, dtype=np.float64)[keep]
    slot, cold = catalogue.cold_slot, catalogue.cold_mask
    if slot is not None and cold is not None and slot.items.size:
        segment = _with_cold_slot(items, scores, top, seen, cold, slot)
        if segment is None:
            return None
        items, scores = segment
    if items.size < depth:
        return None
    cap = settings.max_per_category
    codes = _CodesAt(items.tolist(), catalogue.category_codes)  # looked up only for the positions walked
    ranked = top_k_diverse(scores, np.ones(items.size, dtype=bool), depth, codes, cap)
    if cap is not None:
        # The soft fill adds capped-out items: a list within the cap was filled by the greedy pass alone.
        counts = Counter(c for i in ranked.items.tolist() for c in codes[i])
        if ranked.items.size < depth or any(count > cap for count in counts.values()):
            return None
    return RankedItems(items[ranked.items], ranked.scores)


class _CodesAt(Sequence[Sequence[int]]):
    """The category codes of ``items[position]``, by prefix position, looked up when asked: the diversity
    pass usually decides within the first few dozen of the K prefix items."""

    def __init__(self, items: list[int], category_codes: Sequence[Sequence[int]]) -> None:
        self.items, self.category_codes = items, category_codes

    def __getitem__(self, position: int) -> Sequence[int]:  # type: ignore[override]
        return self.category_codes[self.items[position]]

    def __len__(self) -> int:
        return len(self.items)


def _with_cold_slot(
    items: np.ndarray, scores: np.ndarray, top: TopK, seen: np.ndarray, cold: np.ndarray, slot: ColdSlot
) -> tuple[np.ndarray, np.ndarray] | None:
    """The prefix's eligible items and scores after the cold slot, as the full vector orders them; None when
    the prefix cannot tell what the slot does. ``seen``/``cold``: masks of the history and the cold items.

    The returned items are the first ones of the full ranking after the slot: the prefix, plus the best cold
    item when the slot promotes it from outside the prefix (one that stays outside ranks after the prefix).
    """
    if top.cold_ids is None or top.cold_scores is None:
        return None  # a graph without the best cold item
    cold_id, cold_score = int(top.cold_ids[0]), float(top.cold_scores[0])
    if not np.isfinite(cold_score):
        return items, scores  # every cold item is in the history: the slot cannot fire
    if seen[cold_id]:
        return None  # seen beyond the encoded history: another cold item may be the best eligible one
    is_cold = cold[items]
    if np.count_nonzero(~is_cold) < slot.position:
        return None  # the warm item at the slot's rank lies beyond the prefix
    appended = cold_id not in items
    if appended:
        items, scores = np.append(items, cold_id), np.append(scores, cold_score)
        is_cold = np.append(is_cold, True)
    # The slot rule on positions: the prefix order is the full order, and the slot's item is the graph's (the
    # best-scored cold item, or the text choice).
    promoted = scores.copy()
    chosen = int(np.flatnonzero(items == cold_id)[0])
    score = promoted_score(
        scores, np.ones(items.size, dtype=bool), is_cold, chosen, slot.position, slot.offset
    )
    if score is not None:
        promoted[chosen] = score
    if appended and promoted[-1] == scores[-1]:
        return items[:-1], scores[:-1]
    if score is None:
        return items, promoted
    order = np.lexsort((items, -promoted))  # the full order's tie-break (item index) for the moved item
    return items[order], promoted[order]
