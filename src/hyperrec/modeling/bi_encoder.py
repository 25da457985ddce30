"""Two-tower retrieval: the user's profile text and each item's text, both through a (shared) MiniLM, trained
with InfoNCE over in-batch negatives. Retrieval is an exact matrix product (faiss above a configurable
catalogue size, only when faiss is importable)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.modeling import saved_config
from hyperrec.modeling.finetune import load_state, prepare_runtime, resolve_device, save_state
from hyperrec.modeling.fitting import fit_with_recipe
from hyperrec.modeling.history import decide_exclusion, exclude_history
from hyperrec.modeling.item_encoder import TextEncoder, embed_catalogue, item_texts
from hyperrec.modeling.profiles import ProfileFn, profile_builder
from hyperrec.modeling.settings import BiEncoderSettings, ItemEncoderSettings, ModelingConfig, RuntimeSettings
from hyperrec.modeling.trainer import MetricsCallback, TrainResult, Validator
from hyperrec.models.base import Recommender, ScoringBatch

log = logging.getLogger(__name__)

ITEMS_FILE = "items.parquet"
MATRIX_FILE = "item_matrix.safetensors"
USER_TOWER = "user_tower"
ITEM_TOWER = "item_tower"
ITEM_COLUMNS = ["item_id", "title", "text", "categories", "item_idx"]


def training_pairs(histories: dict[str, np.ndarray], *, per_user: int, min_prefix: int,
                   rng: np.random.Generator) -> list[tuple[str, int]]:
    """(user, position t) pairs: the profile of history[:t] should retrieve history[t]. The last position of
    every user is always included (it is closest to what is evaluated); the rest are uniform.

    Args:
        histories: each user's train item indices, oldest first; users with fewer than 2 items give no pair.
        per_user: the most pairs per user (the last position and up to ``per_user - 1`` others).
        min_prefix: the shortest prefix a pair may have (capped at the history length minus 1).
        rng: draws the extra positions.

    Returns:
        (user id, position) pairs, by user and then position.
    """
    pairs: list[tuple[str, int]] = []
    for user in sorted(histories):
        n = len(histories[user])
        lo = min(min_prefix, n - 1)
        if n < 2 or lo < 1:
            continue
        positions = {n - 1}
        extra = min(per_user - 1, n - 1 - lo)
        if extra > 0:
            positions.update(rng.choice(np.arange(lo, n - 1), size=extra, replace=False).tolist())
        pairs.extend((user, int(t)) for t in sorted(positions))
    return pairs


def n_training_pairs(histories: dict[str, np.ndarray], *, per_user: int, min_prefix: int) -> int:
    """How many pairs ``training_pairs`` gives every epoch (the count does not depend on the draw)."""
    return len(training_pairs(histories, per_user=per_user, min_prefix=min_prefix,
                              rng=np.random.default_rng(0)))


def text_catalogue(items: pd.DataFrame, encoder: ItemEncoderSettings, *, profile_max_items: int,
                   max_tokens: int) -> tuple[pd.DataFrame, list[str], ProfileFn]:
    """The catalogue by item_idx (``ITEM_COLUMNS``), each item's text and the profile-text builder, for
    the models that read profiles (bi-encoder, cross-encoder).

    Args:
        items: the prepared items table.
        encoder: how item texts are built (``max_tags``, ``include_categories``).
        profile_max_items: the most recent items a profile names.
        max_tokens: the profile's token budget.

    Returns:
        (items, texts, profile builder).
    """
    missing = [c for c in ITEM_COLUMNS if c not in items]
    if missing:
        raise ModelError(f"items table lacks columns {missing}")
    table = items.sort_values("item_idx").reset_index(drop=True)[ITEM_COLUMNS].copy()
    texts = item_texts(table, max_tags=encoder.max_tags, include_categories=encoder.include_categories)
    return table, texts, profile_builder(table, max_items=profile_max_items, max_tokens=max_tokens)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k indices and scores, best first."""
    k = min(k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(part, order, axis=1)


class BiEncoderRecommender(Recommender):
    """Profile tower vs item tower. ``fit(data, validate=None, on_metrics=None)``; ``score`` returns
    cosines."""

    name = "bi_encoder"

    def __init__(
        self,
        settings: BiEncoderSettings | None = None,
        *,
        item_encoder: ItemEncoderSettings | None = None,
        runtime: RuntimeSettings | None = None,
    ) -> None:
        self.settings = settings or BiEncoderSettings()
        self.item_encoder_settings = item_encoder or ItemEncoderSettings()
        self.runtime = runtime or RuntimeSettings()
        self.user_tower: TextEncoder | None = None
        self.item_tower: TextEncoder | None = None
        self.items: pd.DataFrame | None = None
        self.texts: list[str] = []
        self.train_result: TrainResult | None = None
        self._item_matrix: np.ndarray | None = None
        self._profile: ProfileFn | None = None
        self._device = torch.device("cpu")
        self.exclude_history = self.settings.history_penalty == "exclude"

    @classmethod
    def from_config(cls, config: ModelingConfig) -> BiEncoderRecommender:
        return cls(config.bi_encoder, item_encoder=config.item_encoder, runtime=config.runtime)

    # ------------------------------------------------------------------------------------------ setup
    def _set_items(self, items: pd.DataFrame) -> None:
        self.items, self.texts, self._profile = text_catalogue(
            items, self.item_encoder_settings, profile_max_items=self.settings.profile_max_items,
            max_tokens=self.settings.profile_max_length)

    def _towers(self) -> list[TextEncoder]:
        assert self.user_tower is not None and self.item_tower is not None
        return [self.user_tower] if self.item_tower is self.user_tower else [self.user_tower, self.item_tower]

    def profile_text(self, history: np.ndarray) -> str:
        if self._profile is None:
            raise ModelError("bi-encoder is not fitted; call fit() or load()")
        return self._profile(history)

    # ------------------------------------------------------------------------------------------ training
    def fit(self, data: PreparedData, *, validate: Validator | None = None,
            on_metrics: MetricsCallback | None = None) -> None:
        """Train both towers (one tower when ``share_towers``) on in-batch negatives, with early stopping.

        Args:
            data: the prepared folder (train split and catalogue).
            validate: ``validate(model) -> float`` for early stopping; None: ``default_validator``.
            on_metrics: receives training and validation metrics (the pipeline forwards them to MLflow).
        """
        s, t = self.settings, self.settings.training
        self._device = device = prepare_runtime(self.runtime)
        self._set_items(data.items)
        path = self.item_encoder_settings.model_path
        self.user_tower = TextEncoder(path, max_length=s.profile_max_length, dropout=t.dropout).to(device)
        self.item_tower = self.user_tower if s.share_towers else TextEncoder(
            path, max_length=s.item_max_length, dropout=t.dropout).to(device)
        self._item_matrix = None

        histories = data.histories(("train",))
        self.exclude_history = decide_exclusion(s.history_penalty, histories)
        rng = np.random.default_rng(self.runtime.seed)
        n_pairs = n_training_pairs(histories, per_user=s.examples_per_user, min_prefix=s.min_prefix)
        if n_pairs < 2:
            raise ModelError("bi-encoder needs at least 2 training pairs (users with 2+ train events)")

        def epoch_batches(epoch: int):
            pairs = training_pairs(histories, per_user=s.examples_per_user, min_prefix=s.min_prefix, rng=rng)
            order = rng.permutation(len(pairs))
            for start in range(0, len(order), t.batch_size):
                chunk = [pairs[i] for i in order[start:start + t.batch_size]]
                if len(chunk) < 2:
                    continue
                profiles = [self.profile_text(histories[u][:pos]) for u, pos in chunk]
                positives = np.array([histories[u][pos] for u, pos in chunk], dtype=np.int64)
                yield profiles, positives

        def step(batch: tuple[list[str], np.ndarray]) -> tuple[torch.Tensor, int]:
            profiles, positives = batch
            return self._loss(profiles, positives), len(profiles)

        towers = self._towers()
        self.train_result = fit_with_recipe(
            self, nn.ModuleList(towers), data, training=t, runtime=self.runtime, lm_modules=towers,
            head_modules=[], device=device, steps_per_epoch=t.steps_per_epoch(n_pairs),
            epoch_batches=epoch_batches, step=step, validate=validate, on_metrics=on_metrics,
            invalidate=self._invalidate,
        )

    def _loss(self, profiles: list[str], positives: np.ndarray) -> torch.Tensor:
        assert self.user_tower is not None and self.item_tower is not None
        users = self.user_tower.encode_tokens(profiles, self.settings.profile_max_length)
        unique, inverse = np.unique(positives, return_inverse=True)
        item_vecs = self.item_tower.encode_tokens(
            [self.texts[i] for i in unique], self.settings.item_max_length
        )
        logits = (
            users @ item_vecs.T / self.settings.temperature
        )  # (B, unique items): duplicates share a column
        return F.cross_entropy(logits.float(), torch.from_numpy(inverse).to(logits.device))

    def _invalidate(self) -> None:
        self._item_matrix = None

    # ------------------------------------------------------------------------------------------ scoring
    def item_vectors(self) -> np.ndarray:
        """(n_items, dim) L2-normalized item-tower vectors of the catalogue (computed once, disk-cached while
        the item tower equals its pretrained weights)."""
        if self._item_matrix is None:
            if self.item_tower is None:
                raise ModelError("bi-encoder is not fitted; call fit() or load()")
            settings = self.item_encoder_settings.model_copy(
                update={"max_length": self.settings.item_max_length}
            )
            self._item_matrix = embed_catalogue(self.texts, settings, self.runtime, encoder=self.item_tower)
        return self._item_matrix

    def user_vectors(self, histories: list[np.ndarray]) -> np.ndarray:
        if self.user_tower is None:
            raise ModelError("bi-encoder is not fitted; call fit() or load()")
        profiles = [self.profile_text(h) for h in histories]
        return self.user_tower.encode(profiles, batch_size=self.settings.score_batch_size,
                                      max_length=self.settings.profile_max_length,
                                      autocast=self.runtime.bf16_autocast)

    def score(self, batch: ScoringBatch) -> np.ndarray:
        scores = (self.user_vectors(batch.histories) @ self.item_vectors().T).astype(np.float32)
        return exclude_history(scores, batch.histories) if self.exclude_history else scores

    def retrieve(
        self, batch: ScoringBatch, k: int, exclude_history: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user: exact, or a faiss inner-product index for big catalogues.

        Args:
            batch: the users and their histories.
            k: items per user.
            exclude_history: leave each user's history items out of the result.

        Returns:
            (item indices, scores), each (n_users, k) and best first; rows with fewer than k items end
            in -1 and -inf.
        """
        users = self.user_vectors(batch.histories)
        matrix = self.item_vectors()
        extra = max((len(h) for h in batch.histories), default=0) if exclude_history else 0
        if len(matrix) >= self.settings.faiss_min_items:
            try:
                import faiss  # type: ignore[import-not-found]
            except ImportError:
                log.warning("catalogue of %d items >= faiss_min_items but faiss is not installed "
                            "(pip install faiss-cpu); using the exact matrix product", len(matrix))
            else:
                index = faiss.IndexFlatIP(matrix.shape[1])
                index.add(np.ascontiguousarray(matrix, dtype=np.float32))
                scores, idx = index.search(np.ascontiguousarray(users, dtype=np.float32),
                                           min(k + extra, len(matrix)))
                return self._drop_history(idx, scores, batch, k, exclude_history)
        scores = users @ matrix.T
        idx, vals = top_k(scores, min(k + extra, len(matrix)))
        return self._drop_history(idx, vals, batch, k, exclude_history)

    @staticmethod
    def _drop_history(idx: np.ndarray, scores: np.ndarray, batch: ScoringBatch, k: int,
                      exclude: bool) -> tuple[np.ndarray, np.ndarray]:
        out_idx = np.full((len(idx), k), -1, dtype=np.int64)
        out_scores = np.full((len(idx), k), -np.inf, dtype=np.float32)
        for row, history in enumerate(batch.histories):
            keep = ~np.isin(idx[row], history) if exclude else np.ones(idx.shape[1], dtype=bool)
            chosen = idx[row][keep][:k]
            out_idx[row, :len(chosen)] = chosen
            out_scores[row, :len(chosen)] = scores[row][keep][:k]
        return out_idx, out_scores

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write the tower(s), the item matrix, the items table and the settings, for ``load``.

        Args:
            directory: the folder to write (created when missing).
        """
        if self.user_tower is None or self.items is None:
            raise ModelError("bi-encoder is not fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.user_tower.save_pretrained(directory / USER_TOWER)
        if self.item_tower is not self.user_tower:
            assert self.item_tower is not None
            self.item_tower.save_pretrained(directory / ITEM_TOWER)
        save_state(directory / MATRIX_FILE, {"item_matrix": torch.from_numpy(self.item_vectors())})
        self.items.to_parquet(directory / ITEMS_FILE, index=False)
        saved_config.write(directory, {
            "class": "BiEncoderRecommender", "model": self.name, **saved_config.sections(self),
            "train_result": self.train_result.to_dict() if self.train_result else None,
            "exclude_history": self.exclude_history,
        })

    @classmethod
    def load(cls, directory: Path) -> BiEncoderRecommender:
        """Rebuild a fitted bi-encoder from ``save`` output.

        Args:
            directory: a folder written by ``save``.

        Returns:
            The model in eval mode on the runtime's device, with the saved item matrix.
        """
        directory = Path(directory)
        config = saved_config.read(directory, "bi-encoder")
        model = cls(BiEncoderSettings.model_validate(config["settings"]), **saved_config.shared(config))
        model._device = device = resolve_device(model.runtime.device)
        model._set_items(pd.read_parquet(directory / ITEMS_FILE))
        model.user_tower = TextEncoder(directory / USER_TOWER, max_length=model.settings.profile_max_length)
        model.user_tower.to(device).eval()
        model.item_tower = model.user_tower
        if (directory / ITEM_TOWER).exists():
            model.item_tower = TextEncoder(directory / ITEM_TOWER, max_length=model.settings.item_max_length)
            model.item_tower.to(device).eval()
        model._item_matrix = load_state(directory / MATRIX_FILE)["item_matrix"].numpy()
        model.train_result = saved_config.train_result(config)
        model.exclude_history = bool(config.get("exclude_history", model.exclude_history))
        return model
