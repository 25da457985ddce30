"""Validators for early stopping: ``Callable[[Recommender], float]``.

``default_validator`` is the evaluation harness's metric
(``hyperrec.evaluation.harness.evaluate_ranking_metric``): the value early stopping sees is the one
``metrics.json`` would report. ``local_validator`` is a quicker stand-in for tests: full ranking over the
catalogue with the user's train items masked, optionally on a sample of users, scored with the same metric
functions (``hyperrec.evaluation.metrics``) and the same metric names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hyperrec.data.prepared import PreparedData
from hyperrec.evaluation.harness import evaluate_ranking_metric, parse_metric
from hyperrec.evaluation.metrics import cutoff_metrics
from hyperrec.models.base import Recommender, ScoringBatch

Validator = Callable[[Recommender], float]


def _cutoff_key(metric: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ("ndcg@10", 10): a full-protocol cutoff metric, the only kind a local ranking
    gives."""
    protocol, key, cutoff = parse_metric(metric)
    if protocol != "full" or cutoff is None:
        raise ValueError(
            f"unsupported validation metric {metric!r}; use a full-protocol cutoff metric, e.g. ndcg@10"
        )
    return key, cutoff


def ranking_metric(scores: np.ndarray, relevant: list[np.ndarray], metric: str) -> np.ndarray:
    """Per-user metric of a (n_users, n_items) score matrix whose masked entries are -inf.

    A relevant item's rank is its expected rank under random tie-breaking (1 + the items scored higher + half
    the other items scored the same); a user without relevant items scores 0.
    """
    key, k = _cutoff_key(metric)
    out = np.zeros(len(relevant), dtype=np.float64)
    for row, rel in enumerate(relevant):
        if len(rel) == 0:
            continue
        user_scores = scores[row][None, :]
        targets = scores[row][rel][:, None]
        ranks = 1.0 + (user_scores > targets).sum(1) + ((user_scores == targets).sum(1) - 1) / 2.0
        out[row] = cutoff_metrics(ranks, len(rel), [k])[key]
    return out


def local_validator(data: PreparedData, *, split: str = "validation", metric: str = "ndcg@10",
                    max_users: int | None = None, seed: int = 42, batch_size: int = 256) -> Validator:
    """Full-ranking metric on ``split`` with the history of the earlier splits (train items masked)."""
    _cutoff_key(metric)
    earlier = {"validation": ("train",), "test": ("train", "validation")}[split]
    histories = data.histories(earlier)
    frame = data.split(split)
    targets = {str(user): np.unique(group.to_numpy(dtype=np.int64))
               for user, group in frame.groupby("user_id")["item_idx"]}
    train_items = data.histories(("train",))
    users = sorted(u for u in targets if u in histories)
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())

    def validate(model: Recommender) -> float:
        values = []
        for start in range(0, len(users), batch_size):
            chunk = users[start:start + batch_size]
            scores = np.array(
                model.score(ScoringBatch(chunk, [histories[u] for u in chunk])), dtype=np.float32
            )
            relevant = []
            for row, user in enumerate(chunk):
                seen = train_items.get(user, np.zeros(0, dtype=np.int64))
                scores[row, seen] = -np.inf
                relevant.append(np.setdiff1d(targets[user], seen))
            values.append(ranking_metric(scores, relevant, metric))
        return float(np.concatenate(values).mean()) if values else float("nan")

    return validate


def default_validator(data: PreparedData, *, metric: str = "ndcg@10", seed: int = 42) -> Validator:
    """The evaluation harness's ``metric`` on the validation split (same users, masking and tie-breaking as
    ``evaluate`` with this seed)."""

    def validate(model: Recommender) -> float:
        return float(evaluate_ranking_metric(model, data, split="validation", metric=metric, seed=seed))

    return validate
