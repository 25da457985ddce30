"""Matrix-factorization baselines from ``implicit`` (CPU): ALS and BPR.

Both keep only the item factors after fitting and compute the user factor from the history sent with each
scoring call, so the same object serves offline evaluation and an online request with a fresh history:

- ALS: ``AlternatingLeastSquares.recalculate_user``, the exact least-squares solve of one ALS user step
  against the fitted item factors (the same step training takes).
- BPR: implicit 0.7.3 has no ``recalculate_user`` for BPR (it raises NotImplementedError). Its item factors
  carry an item bias in the last column and each user factor a constant 1 there; we set the user factor to
  the mean of the history items' factors with that constant 1 in the bias slot. It is deterministic, costs
  one sparse product, and on the ml-latest-small validation items it did as well as the other closed-form
  fold-ins tried (ridge least squares against the binary history, ALS-style weighted least squares); the
  factors BPR learned for its train users scored higher but cannot serve a history sent with a request.

Reproducibility: ALS is bit-identical for a given seed at any thread count; BPR's parallel SGD is only with
``threads=1`` (with more threads, updates race and the factors differ slightly from run to run).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from hyperrec.config import BaselinesConfig
from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.models.base import Recommender, ScoringBatch
from hyperrec.models.interactions import history_matrix, read_meta, train_matrix, write_meta

_FACTORS_FILE = "item_factors.npy"


class _ItemFactorRecommender(Recommender):
    """Shared fit/save/load of a model reduced to its item factors after training."""

    #: BaselinesConfig fields this model uses, saved in model.json so that ``load`` rebuilds the same model.
    config_fields: tuple[str, ...] = ()

    def __init__(self, config: BaselinesConfig | None = None, *, seed: int = 0, threads: int = 1) -> None:
        self.config = config or BaselinesConfig()
        self.seed = seed
        self.threads = threads
        self.item_factors: np.ndarray | None = None

    @abstractmethod
    def _new_model(self) -> AlternatingLeastSquares | BayesianPersonalizedRanking:
        """A fresh, unfitted ``implicit`` model with this object's settings."""

    def fit(self, data: PreparedData) -> None:
        user_items = train_matrix(data)
        # implicit runs its own thread pool; a multi-threaded BLAS underneath oversubscribes the cores.
        with threadpool_limits(1, "blas"):
            model = self._new_model()
            model.fit(user_items, show_progress=False)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _fitted(self) -> np.ndarray:
        if self.item_factors is None:
            raise ModelError(f"{self.name} model is not fitted")
        return self.item_factors

    def save(self, directory: Path) -> None:
        factors = self._fitted()
        settings = {name: getattr(self.config, name) for name in self.config_fields}
        write_meta(directory, {"model": self.name, "config": settings, "seed": self.seed,
                               "threads": self.threads, "n_items": len(factors)})
        np.save(directory / _FACTORS_FILE, factors, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> _ItemFactorRecommender:
        meta = read_meta(directory, cls.name)
        model = cls(BaselinesConfig(**meta["config"]), seed=meta["seed"], threads=meta["threads"])
        model.item_factors = np.load(directory / _FACTORS_FILE, allow_pickle=False)
        return model


class ALSRecommender(_ItemFactorRecommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with confidence 1 + alpha on each history item."""

    name = "als"
    config_fields = ("als_factors", "als_regularization", "als_iterations", "als_alpha")

    def _new_model(self) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(
            factors=self.config.als_factors,
            regularization=self.config.als_regularization,
            alpha=self.config.als_alpha,
            iterations=self.config.als_iterations,
            random_state=self.seed,
            num_threads=self.threads,
        )

    def score(self, batch: ScoringBatch) -> np.ndarray:
        factors = self._fitted()
        with threadpool_limits(1, "blas"):
            model = self._new_model()
            model.item_factors = factors
            history = history_matrix(batch.histories, len(factors))
            users = model.recalculate_user(np.arange(len(batch.user_ids)), history)
        return np.asarray(users @ factors.T, dtype=np.float32)


class BPRRecommender(_ItemFactorRecommender):
    """Bayesian Personalized Ranking (Rendle et al. 2009) with an item bias; the user factor is folded in
    as the mean of the history items' factors."""

    name = "bpr"
    config_fields = ("bpr_factors", "bpr_learning_rate", "bpr_regularization", "bpr_iterations")

    def _new_model(self) -> BayesianPersonalizedRanking:
        return BayesianPersonalizedRanking(
            factors=self.config.bpr_factors,
            learning_rate=self.config.bpr_learning_rate,
            regularization=self.config.bpr_regularization,
            iterations=self.config.bpr_iterations,
            random_state=self.seed,
            # implicit's BPR is Hogwild SGD: with several threads the update order, and so the result, depends
            # on scheduling (full NDCG@10 0.029-0.031 across runs). One thread makes a seed give one model.
            num_threads=1,
        )

    def score(self, batch: ScoringBatch) -> np.ndarray:
        factors = self._fitted()
        history = history_matrix(batch.histories, len(factors))
        counts = np.asarray(history.sum(axis=1)).ravel()
        users = np.asarray(history @ factors, dtype=np.float32)
        users /= np.maximum(counts, 1)[:, None]
        users[:, -1] = 1.0
        return np.asarray(users @ factors.T, dtype=np.float32)
