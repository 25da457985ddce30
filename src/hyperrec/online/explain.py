"""Why an item was recommended: the history items most similar to it.

Two methods, and every explanation says which one it used:

- ``embedding_cosine``: cosine similarity of the bundle's item embeddings (the model's own item space);
- ``category_overlap``: Jaccard overlap of the items' categories, used when the bundle has no embeddings.
  It needs no co-occurrence statistics, so it works for any catalogue, but it is coarse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperrec.online.catalogue import Catalogue

EMBEDDING_METHOD = "embedding_cosine"
CATEGORY_METHOD = "category_overlap"


@dataclass(frozen=True)
class Because:
    """One history item behind a recommendation."""

    item_idx: int
    similarity: float


def explanation_method(catalogue: Catalogue) -> str:
    return EMBEDDING_METHOD if catalogue.embeddings is not None else CATEGORY_METHOD


def explain(
    catalogue: Catalogue, recommended: np.ndarray, history: np.ndarray, top_n: int
) -> list[list[Because]]:
    """For each recommended item, up to ``top_n`` distinct history items, most similar first."""
    history = np.unique(np.asarray(history, dtype=np.int64))
    if history.size == 0 or len(recommended) == 0:
        return [[] for _ in range(len(recommended))]
    if catalogue.embeddings is not None:
        sims = catalogue.embeddings[np.asarray(recommended, dtype=np.int64)] @ catalogue.embeddings[history].T
    else:
        sims = np.array(
            [
                [_jaccard(catalogue.categories[r], catalogue.categories[h]) for h in history]
                for r in recommended
            ],
            dtype=np.float64,
        )
    out = []
    for row in sims:
        order = np.lexsort((history, -row))[:top_n]
        out.append([Because(int(history[j]), round(float(row[j]), 4)) for j in order])
    return out


def _jaccard(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0
