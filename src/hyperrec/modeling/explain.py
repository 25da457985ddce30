"""Why was this item recommended? The history items that contributed most, with the model's score.

Methods:
- ``similarity`` (every model with ``item_vectors()``): cosine between the recommended item and each history
  item in the model's own item space; the weights are those cosines.
- ``attention`` (next-item models): the last transformer block's attention from the scoring position over the
  history items (averaged over heads), i.e. what the model read when it scored; weights sum to 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from hyperrec.errors import ModelError
from hyperrec.models.base import Recommender, ScoringBatch


@dataclass(frozen=True)
class Contribution:
    """One history item and how much it weighs in the explanation."""

    item_idx: int
    item_id: str | None
    title: str | None
    weight: float
    #: 0 = the most recent history item.
    recency: int


@dataclass(frozen=True)
class Explanation:
    """Structured explanation of one (user, recommended item) pair."""

    user_id: str
    item_idx: int
    item_id: str | None
    title: str | None
    score: float
    #: 1-based rank of the item among the items not in the history.
    rank: int
    method: str
    model: str
    contributions: list[Contribution] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lookup(items: pd.DataFrame | None, idx: int) -> tuple[str | None, str | None]:
    if items is None:
        return None, None
    row = items.iloc[idx] if "item_idx" not in items or items["item_idx"].iat[idx] == idx else \
        items.loc[items["item_idx"] == idx].iloc[0]
    return str(row["item_id"]), (str(row["title"]) if "title" in row else None)


def explain(
    model: Recommender,
    user_id: str,
    history: np.ndarray,
    item_idx: int,
    *,
    items: pd.DataFrame | None = None,
    top_n: int = 5,
    method: Literal["auto", "similarity", "attention"] = "auto",
) -> Explanation:
    """Explain ``model``'s score of ``item_idx`` for a user with ``history`` (item indices, oldest first).

    ``items`` (items.parquet) adds item ids and titles. ``auto`` uses similarity; for a reranker, the retriever's
    item space is used.
    """
    history = np.asarray(history, dtype=np.int64)
    scores = np.asarray(model.score(ScoringBatch([user_id], [history]))[0], dtype=np.float64)
    n_items = scores.shape[0]
    if not 0 <= item_idx < n_items:
        raise ModelError(f"item_idx {item_idx} is outside the catalogue of {n_items} items")
    history = history[(history >= 0) & (history < n_items)]
    masked = scores.copy()
    masked[history] = -np.inf
    rank = int((masked > scores[item_idx]).sum()) + 1
    space = model
    while not hasattr(space, "item_vectors") and hasattr(space, "retriever"):
        space = space.retriever  # type: ignore[attr-defined]
    method_used = "similarity" if method == "auto" else method

    # most recent occurrence of each history item
    recency: dict[int, int] = {}
    for pos, idx in enumerate(history[::-1]):
        recency.setdefault(int(idx), pos)
    contributions: list[tuple[int, float]] = []
    if method_used == "attention":
        if not hasattr(space, "last_attention"):
            raise ModelError(f"{type(space).__name__} has no attention to explain with; use method='similarity'")
        read, weights = space.last_attention(history, user_id)  # type: ignore[attr-defined]
        totals: dict[int, float] = {}
        for idx, w in zip(read.tolist(), weights.tolist()):
            totals[int(idx)] = totals.get(int(idx), 0.0) + float(w)
        contributions = list(totals.items())
    elif method_used == "similarity":
        if not hasattr(space, "item_vectors"):
            raise ModelError(f"{type(model).__name__} exposes no item space (item_vectors) to explain with")
        vectors = np.asarray(space.item_vectors(), dtype=np.float64)  # type: ignore[attr-defined]
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        unique = np.array(sorted(recency), dtype=np.int64)
        if len(unique):
            sims = vectors[unique] @ vectors[item_idx]
            contributions = list(zip(unique.tolist(), sims.tolist()))
    else:
        raise ModelError(f"unknown explanation method {method!r}")
    contributions.sort(key=lambda pair: (-pair[1], recency.get(pair[0], 0)))
    item_id, title = _lookup(items, item_idx)
    return Explanation(
        user_id=user_id, item_idx=int(item_idx), item_id=item_id, title=title, score=float(scores[item_idx]),
        rank=rank, method=method_used, model=getattr(model, "name", type(model).__name__),
        contributions=[
            Contribution(int(idx), *_lookup(items, int(idx)), weight=float(w), recency=recency.get(int(idx), -1))
            for idx, w in contributions[:top_n]
        ],
    )
