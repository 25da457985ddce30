"""Validators for early stopping: ``Callable[[Recommender], float]``.

``default_validator`` uses the evaluation harness (``hyperrec.evaluation.harness.evaluate_ranking_metric``)
when it is importable and otherwise a small local full-ranking metric, so that this library never depends on
the harness being present. ``local_validator`` is the local metric: full ranking over the catalogue with the
user's history items masked, binary relevance of the split's items, HR@k or NDCG@k.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from hyperrec.data.prepared import PreparedData
from hyperrec.models.base import Recommender, ScoringBatch

log = logging.getLogger(__name__)

Validator = Callable[[Recommender], float]


def _parse_metric(metric: str) -> tuple[str, int]:
    name, _, k = metric.lower().partition("@")
    if name not in ("ndcg", "hr", "recall") or not k.isdigit():
        raise ValueError(f"unsupported validation metric {metric!r}; use ndcg@K, hr@K or recall@K")
    return name, int(k)


def ranking_metric(scores: np.ndarray, relevant: list[np.ndarray], metric: str) -> np.ndarray:
    """Per-user metric of a (n_users, n_items) score matrix whose masked entries are -inf."""
    name, k = _parse_metric(metric)
    out = np.zeros(len(relevant), dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for row, rel in enumerate(relevant):
        if len(rel) == 0:
            continue
        user_scores = scores[row]
        # rank of each relevant item = items scored strictly higher + half the ties (random tie-breaking)
        higher = (user_scores[None, :] > user_scores[rel][:, None]).sum(1)
        ties = (user_scores[None, :] == user_scores[rel][:, None]).sum(1) - 1
        ranks = higher + ties / 2.0
        hits = ranks < k
        if name == "hr":
            out[row] = float(hits.any())
        elif name == "recall":
            out[row] = hits.sum() / min(len(rel), k)
        else:
            dcg = (1.0 / np.log2(ranks[hits] + 2)).sum()
            out[row] = dcg / discounts[: min(len(rel), k)].sum()
    return out


def local_validator(data: PreparedData, *, split: str = "validation", metric: str = "ndcg@10",
                    max_users: int | None = None, seed: int = 42, batch_size: int = 256) -> Validator:
    """Full-ranking metric on ``split`` with the history of the earlier splits (train items masked)."""
    _parse_metric(metric)
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
            scores = np.array(model.score(ScoringBatch(chunk, [histories[u] for u in chunk])), dtype=np.float32)
            relevant = []
            for row, user in enumerate(chunk):
                seen = train_items.get(user, np.zeros(0, dtype=np.int64))
                scores[row, seen] = -np.inf
                relevant.append(np.setdiff1d(targets[user], seen))
            values.append(ranking_metric(scores, relevant, metric))
        return float(np.concatenate(values).mean()) if values else float("nan")

    return validate


def default_validator(data: PreparedData, *, metric: str = "ndcg@10", seed: int = 42) -> Validator:
    """The evaluation harness's validation metric when available, else ``local_validator``."""
    try:
        from hyperrec.evaluation.harness import evaluate_ranking_metric  # type: ignore[import-not-found]
    except ImportError:
        log.info("hyperrec.evaluation.harness not available; early stopping uses the local %s", metric)
        return local_validator(data, metric=metric, seed=seed)

    def validate(model: Recommender) -> float:
        return float(evaluate_ranking_metric(model, data, split="validation", metric=metric, seed=seed))

    return validate
