"""Fitting the cold-item slot (``hyperrec.online.cold_items``) of a trained next-item model on validation.

The slot lets the best-scored item without training history take rank ``position`` when its text score plus
an ``offset`` reaches the score of the warm item there. The offset is the calibration between the two score
scales, and it decides how often the slot fires, so it is fitted where the price is measurable: on the
validation split, the offset fires for the most users whose validation NDCG@10 (every user, the harness's
metric) loses at most ``max_cost`` (relative) against the ranking without the slot, counting only the users it
costs; it lies halfway to the next user's gap, so float rounding between evaluation and serving cannot flip
a user sitting exactly on it.
What the slot wins cannot be measured there when validation has no cold targets (the cold-start benchmark
removes them), which is why the fit is a budget on the price, not a search for the best trade.

Each user fires or not independently of the others, so two harness runs (never / always firing) give every
user's NDCG both ways, and any offset's metric is a mean of those two columns: no grid of evaluations.

``chooser`` picks which cold item the slot offers: the best-scored (``score``) or the one whose text is
closest to the user's recent history (``history_text``, with the model's item text table as the vectors).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from hyperrec.online.cold_items import ColdSlot, choose_cold_items, reserve_cold_slot
from hyperrec.settings_base import Section

if TYPE_CHECKING:  # pragma: no cover
    from hyperrec.data.prepared import PreparedData
    from hyperrec.models.base import ScoringBatch

log = logging.getLogger(__name__)


class ColdSlotSettings(Section):
    """Where the best cold item may enter the ranking, and how much validation NDCG that may cost."""

    position: int = Field(10, ge=1, description="1-based rank the best item without training history may "
                          "take (it pushes the warm item there one place down).")
    max_cost: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="Largest relative loss of validation NDCG@10 the slot may cost; the calibration offset "
        "is the largest that stays within it. 0 turns the slot off.",
    )
    chooser: Literal["score", "history_text"] = Field(
        "history_text",
        description="Which cold item the slot offers: the best-scored one, or the one whose text is closest "
        "(cosine) to the mean text of the user's last `window` history items.",
    )
    window: int = Field(20, ge=1, description="Most recent history items whose text chooses the cold item.")
    max_fit_users: int = Field(
        2000, ge=1, description="Validation users (a seeded sample) the offset is fitted on: their full "
        "score rows are held in memory, users x catalogue floats (33,817 x 63,436 ran out of memory).",
    )


class _FixedScores:
    """A Recommender over precomputed score rows, optionally through a slot (for the harness's metric)."""

    name = "cold_slot_fit"

    def __init__(self, scores: np.ndarray, user_ids: list[str], slot: ColdSlot | None) -> None:
        self.scores, self.slot = scores, slot
        self.row = {user: i for i, user in enumerate(user_ids)}

    def score(self, batch: ScoringBatch) -> np.ndarray:
        rows = self.scores[[self.row[u] for u in batch.user_ids]]
        return rows if self.slot is None else reserve_cold_slot(rows, self.slot, histories=batch.histories)


def slot_gaps(
    scores: np.ndarray, cold: np.ndarray, position: int, chosen: np.ndarray | None = None
) -> np.ndarray:
    """Per row, the offset the slot needs to fire: k-th warm score minus the chosen cold item's score
    (default: the best cold score); +inf: it never can (or no item is chosen), -inf: the item already ranks
    within ``position``."""
    gaps = np.full(scores.shape[0], np.inf)
    if not cold.any() or (~cold).sum() < position:
        return gaps
    warm = scores[:, ~cold]
    kth = np.partition(warm, warm.shape[1] - position, axis=1)[:, warm.shape[1] - position]
    if chosen is None:
        gaps = kth - scores[:, cold].max(axis=1)
    else:
        picked = scores[np.arange(scores.shape[0]), np.maximum(chosen, 0)]
        gaps = np.where(chosen >= 0, kth - picked, np.inf)
    return np.where(gaps <= 0, -np.inf, gaps)


def fit_offset(gaps: np.ndarray, base: np.ndarray, fired: np.ndarray, max_cost: float) -> float:
    """An offset whose firing (``fired`` where gap <= offset, else ``base``) loses at most ``max_cost`` of
    ``base``'s mean and fires for the most users; -inf when even the smallest firing costs more. It lies
    halfway between the last gap it fires for and the next one (no user sits on its boundary).

    Only losses count: a validation user whose cold target the slot finds does not buy firing for others,
    so the budget bounds what warm users pay (on the normal split, counting gains let the slot fire for 95 %
    of users and cost 2.8 % on test).

    Args:
        gaps: per validation user, the offset the slot needs to fire (``slot_gaps``).
        base: per user, the metric without the slot.
        fired: per user, the metric when the slot fires.
        max_cost: the largest relative loss of ``base``'s mean (``ColdSlotSettings.max_cost``).

    Returns:
        The offset, or -inf.
    """
    budget = max_cost * float(base.mean())
    delta = np.where(np.isfinite(gaps), np.minimum(fired - base, 0.0), 0.0)
    order = np.argsort(gaps, kind="stable")
    ok = np.flatnonzero(np.isfinite(gaps[order]) & (np.cumsum(delta[order]) / len(base) >= -budget))
    # A user's gap is a threshold; ties share it, so only the last of equal gaps decides.
    candidates = [i for i in ok if i + 1 == len(order) or gaps[order[i + 1]] != gaps[order[i]]]
    if not candidates:
        return -np.inf
    last = candidates[-1]
    return _between(float(gaps[order[last]]), float(gaps[order[last + 1]]) if last + 1 < len(order) else None)


def _between(gap: float, next_gap: float | None) -> float:
    """An offset that fires for ``gap`` and not for ``next_gap``, away from both: an offset equal to a gap
    puts that user on the boundary, where float rounding (onnxruntime serving, torch evaluating) decides."""
    if next_gap is not None and np.isfinite(next_gap):
        return (gap + next_gap) / 2
    return gap + 1e-3 * max(1.0, abs(gap))


def text_vectors(table: np.ndarray) -> np.ndarray:
    """The item text table as the slot's vectors: float32 rows scaled to unit length (zero rows stay zero)."""
    table = np.asarray(table, dtype=np.float32)
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    return table / np.where(norms > 0, norms, 1).astype(np.float32)


def saved_slot(payload: dict | None, text_table: np.ndarray | None) -> ColdSlot | None:
    """The slot a saved model's config holds (``ColdSlot.to_dict``), its vectors rebuilt from the model's text
    table when it chooses by the history's text."""
    if not payload:
        return None
    history_text = payload.get("chooser") == "history_text" and text_table is not None
    return ColdSlot.from_dict(payload, text_vectors(text_table) if history_text else None)


def fit_cold_slot(model: object, data: PreparedData, cold: np.ndarray, settings: ColdSlotSettings, *,
                  seed: int, metric: str = "ndcg@10", vectors: np.ndarray | None = None) -> ColdSlot | None:
    """The slot of ``model`` (scores without a slot) fitted on ``data``'s validation split; None when it is
    off, there are no cold items, or no offset fits the budget. ``vectors`` (item text, rows L2-normalized)
    are what a ``history_text`` chooser compares; without them the slot chooses by score."""
    from hyperrec.evaluation.harness import EvaluationSet, _run_model
    from hyperrec.models.base import ScoringBatch

    if settings.max_cost == 0 or not cold.size:
        return None
    eval_set = EvaluationSet.build(data, "validation", seed=seed, sampled_negatives=None)
    eval_set = eval_set.sample(settings.max_fit_users, seed)
    scores = np.concatenate([model.score(ScoringBatch(eval_set.user_ids[rows], eval_set.histories[rows]))  # type: ignore[attr-defined]
                             for rows in eval_set.batches(256)])
    cutoff = int(metric.split("@")[1])
    vectors = vectors if settings.chooser == "history_text" else None
    always = ColdSlot(cold, settings.position, np.inf, vectors, settings.window)
    runs = [_run_model("cold_slot_fit", _FixedScores(scores, eval_set.user_ids, slot), eval_set,
                       k_values=[cutoff], batch_size=256, top_n=0).full[metric].to_numpy()
            for slot in (None, always)]
    mask = np.zeros(scores.shape[1], dtype=bool)
    mask[cold] = True
    chosen = choose_cold_items(scores, always, np.isfinite(scores), eval_set.histories)
    gaps = slot_gaps(scores, mask, settings.position, chosen)
    offset = fit_offset(gaps, runs[0], runs[1], settings.max_cost)
    fires = float(np.mean(np.isfinite(gaps) & (gaps <= offset)))
    log.info("cold slot: %d cold items; offset %.3f fires for %.1f%% of validation users (validation %s %.4f "
             "-> %.4f)", cold.size, offset, 100 * fires, metric, runs[0].mean(),
             np.where(gaps <= offset, runs[1], runs[0]).mean())
    if not np.isfinite(offset):
        return None
    return ColdSlot(cold, settings.position, offset, vectors, settings.window)
