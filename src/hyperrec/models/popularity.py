"""Most-popular baseline: every user gets the train items ranked by how many users touched them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperrec.config import BaselinesConfig
from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.models.base import Recommender, ScoringBatch
from hyperrec.models.interactions import read_meta, train_matrix, write_meta

_COUNTS_FILE = "counts.npy"


class PopularityRecommender(Recommender):
    """Scores an item by its number of distinct train users; ignores the history on purpose.

    It is the floor every personalised model must beat. Items nobody touched in train score 0 (a tie broken
    by the evaluation protocol), not -inf: they are still recommendable.
    """

    name = "popularity"

    def __init__(self, config: BaselinesConfig | None = None, *, seed: int = 0, threads: int = 1) -> None:
        # Popularity has no hyperparameters or randomness; the common constructor keeps the registry uniform.
        self.counts: np.ndarray | None = None

    def fit(self, data: PreparedData) -> None:
        self.counts = np.asarray(train_matrix(data).sum(axis=0), dtype=np.float32).ravel()

    def _fitted_counts(self) -> np.ndarray:
        if self.counts is None:
            raise ModelError("popularity model is not fitted")
        return self.counts

    def score(self, batch: ScoringBatch) -> np.ndarray:
        counts = self._fitted_counts()
        return np.broadcast_to(counts, (len(batch.user_ids), len(counts))).copy()

    def save(self, directory: Path) -> None:
        counts = self._fitted_counts()
        write_meta(directory, {"model": self.name, "n_items": len(counts)})
        np.save(directory / _COUNTS_FILE, counts, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> PopularityRecommender:
        read_meta(directory, cls.name)
        model = cls()
        model.counts = np.load(directory / _COUNTS_FILE, allow_pickle=False)
        return model
