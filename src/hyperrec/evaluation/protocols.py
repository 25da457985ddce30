"""Turning a model's score matrix into ranks under the two evaluation protocols.

Full protocol: every catalogue item is a candidate except the user's train items (the validation item stays
one when the test split is evaluated, as the reference protocol in ``shared/datasets/README.md`` asks). The
targets are ranked among all remaining candidates.

Sampled protocol: the targets are ranked against ``n`` negatives drawn uniformly, without replacement, from
the items the user never touched in any split; it also reports AUC.

Ties. Many models score whole blocks of items equally (popularity on never-seen items, kNN on items with no
neighbours). Ties are broken by one seeded random permutation of the catalogue: among equal scores, the item
that comes first in the permutation ranks first. This is one realization of random tie-breaking, not its
expectation, chosen so that the top-N lists written to ``recommendations.jsonl`` and the metrics computed from
ranks agree exactly (``recompute.py`` checks that). AUC alone counts a tie as 1/2, its expectation.

Order of a user's candidates: finite scores, best first; then ``-inf`` (items the model cannot score), in
tie-break order. Masked train items are not candidates at all; internally they are marked with NaN, which is
why ``check_scores`` rejects NaN coming from a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hyperrec.errors import ModelError
from hyperrec.evaluation.metrics import auc

# Separate random streams per purpose, so that drawing negatives never shifts the tie-break permutation.
_TIE_STREAM, _NEGATIVE_STREAM = 1, 2


@dataclass(frozen=True)
class TieBreak:
    """One seeded random permutation of the catalogue; earlier in ``order`` wins a tie."""

    order: np.ndarray
    priority: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        priority = np.empty(len(self.order), dtype=np.int64)
        priority[self.order] = np.arange(len(self.order))
        object.__setattr__(self, "priority", priority)

    @classmethod
    def seeded(cls, n_items: int, seed: int) -> TieBreak:
        return cls(np.random.default_rng((seed, _TIE_STREAM)).permutation(n_items))


def check_scores(scores: np.ndarray, n_users: int, n_items: int, model_name: str) -> np.ndarray:
    """Reject a score matrix that breaks the Recommender contract, before it silently skews metrics.

    Args:
        scores: what the model returned.
        n_users: the expected number of rows.
        n_items: the expected number of columns.
        model_name: the model, named in errors.

    Returns:
        ``scores`` unchanged.

    Raises:
        ModelError: the shape is wrong or a score is NaN or +inf.
    """
    if not isinstance(scores, np.ndarray) or scores.shape != (n_users, n_items):
        shape = getattr(scores, "shape", None)
        raise ModelError(f"model {model_name!r} returned scores of shape {shape}; "
                         f"expected {(n_users, n_items)}")
    if np.isnan(scores).any():
        raise ModelError(f"model {model_name!r} returned NaN scores; use -inf for unscorable items")
    if np.isposinf(scores).any():
        raise ModelError(f"model {model_name!r} returned +inf scores")
    return scores


def mask_items(scores: np.ndarray, excluded: Sequence[np.ndarray]) -> np.ndarray:
    """A float64 copy of ``scores`` with each row's excluded items (the train items) set to NaN."""
    masked = scores.astype(np.float64, copy=True)
    for row, items in enumerate(excluded):
        masked[row, items] = np.nan
    return masked


def _ahead(candidate_scores: np.ndarray, candidate_priority: np.ndarray, score: float,
           priority: int) -> np.ndarray:
    """Which candidates rank before an item with ``score``/``priority`` (NaN candidates never do)."""
    return (candidate_scores > score) | ((candidate_scores == score) & (candidate_priority < priority))


def full_ranks(masked_row: np.ndarray, targets: np.ndarray, tie: TieBreak) -> np.ndarray:
    """1-based ranks of ``targets`` among the row's candidates; ``inf`` for a masked target.

    Counting the candidates that beat each target is O(n_items) per target, cheaper than sorting when only
    the metric is needed (early stopping).

    Args:
        masked_row: one user's scores, NaN for the masked items.
        targets: the user's held-out item indices.
        tie: the tie-break order.

    Returns:
        One rank per target (float, ``inf`` when masked).
    """
    ranks = np.full(len(targets), np.inf)
    for i, target in enumerate(targets):
        score = masked_row[target]
        if not np.isnan(score):
            ranks[i] = 1 + np.count_nonzero(_ahead(masked_row, tie.priority, score, tie.priority[target]))
    return ranks


def top_items(masked: np.ndarray, tie: TieBreak, n: int) -> list[np.ndarray]:
    """Per row, the first ``n`` candidates in protocol order (fewer if fewer candidates remain).

    A stable sort of the columns laid out in tie-break order realizes "score desc, then permutation"; NaN
    (masked) sorts last and is cut off.

    Args:
        masked: user x item scores, NaN for the masked items.
        tie: the tie-break order.
        n: the list length.

    Returns:
        One array of item indices per row, best first.
    """
    permuted = masked[:, tie.order]
    order = np.argsort(-permuted, axis=1, kind="stable")[:, :n]
    best = tie.order[order]
    kept = ~np.isnan(np.take_along_axis(permuted, order, axis=1))
    return [row[keep] for row, keep in zip(best, kept, strict=True)]


def sample_negatives(touched: Sequence[np.ndarray], n_items: int, n_negatives: int,
                     seed: int) -> list[np.ndarray]:
    """Per user, ``n_negatives`` items drawn uniformly without replacement from the untouched items.

    One generator walks the users in the given order, so the same seed and user order give the same
    negatives to every model compared. Drawing ``n_negatives + |touched|`` distinct items and dropping the
    touched ones is an exact uniform draw from the untouched items without building their list. A user who
    touched nearly the whole catalogue gets all the untouched items.

    Args:
        touched: per user, the items they interacted with (never drawn).
        n_items: the catalogue size.
        n_negatives: the negatives per user.
        seed: the evaluation seed.

    Returns:
        Per user, in input order, the drawn item indices (int64).
    """
    rng = np.random.default_rng((seed, _NEGATIVE_STREAM))
    negatives = []
    for items in touched:
        seen = np.unique(items)
        size = min(n_items, n_negatives + len(seen))
        drawn = rng.choice(n_items, size=size, replace=False)
        negatives.append(drawn[~np.isin(drawn, seen)][:n_negatives].astype(np.int64))
    return negatives


def sampled_ranks(masked_row: np.ndarray, targets: np.ndarray, negatives: np.ndarray,
                  tie: TieBreak) -> tuple[np.ndarray, float]:
    """Ranks of ``targets`` among targets + negatives, and the user's AUC (mean over targets).

    A masked target (the user already had it in train) cannot be recommended: rank ``inf``, AUC 0. A user
    with no negatives left (they touched the whole catalogue) gets AUC 0.5, the no-information value.

    Args:
        masked_row: one user's scores, NaN for the masked items.
        targets: the user's held-out item indices.
        negatives: the user's sampled negatives.
        tie: the tie-break order.

    Returns:
        One rank per target (float, ``inf`` when masked) and the user's AUC.
    """
    candidates = np.concatenate([targets, negatives])
    candidate_scores = masked_row[candidates]
    candidate_priority = tie.priority[candidates]
    negative_scores = masked_row[negatives]
    ranks = np.full(len(targets), np.inf)
    aucs = np.zeros(len(targets))
    for i, target in enumerate(targets):
        score = masked_row[target]
        if np.isnan(score):
            continue
        ranks[i] = 1 + np.count_nonzero(
            _ahead(candidate_scores, candidate_priority, score, tie.priority[target]))
        if len(negatives):
            aucs[i] = auc(int(np.count_nonzero(negative_scores < score)),
                          int(np.count_nonzero(negative_scores == score)), len(negatives))
        else:
            aucs[i] = 0.5
    return ranks, float(aucs.mean())
