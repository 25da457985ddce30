"""What every recommender (classical or language-model based) offers to evaluation and serving."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperrec.data.prepared import PreparedData


@dataclass(frozen=True)
class ScoringBatch:
    """Users to score. ``histories[i]`` holds user i's item indices, oldest first.

    The history is everything the model may know at scoring time (for the test split: train and validation
    events), so that the same call serves offline evaluation and an online request that sends its history.
    """

    user_ids: list[str]
    histories: list[np.ndarray]

    def __post_init__(self) -> None:
        if len(self.user_ids) != len(self.histories):
            raise ValueError("user_ids and histories must have the same length")


class Recommender(ABC):
    """A model that scores the whole catalogue for a batch of users."""

    #: Short stable name used in metrics.json, MLflow and output folders.
    name: str

    @abstractmethod
    def fit(self, data: PreparedData) -> None:
        """Train on ``data.split('train')`` (and use validation only for early stopping)."""

    @abstractmethod
    def score(self, batch: ScoringBatch) -> np.ndarray:
        """Return float32 scores of shape (len(batch.user_ids), n_items); higher is better.

        Items the model cannot score get ``-inf``. Filtering already-seen items is the caller's job.
        """

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything needed by ``load`` into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Recommender:
        """Rebuild a fitted model from ``save`` output."""
