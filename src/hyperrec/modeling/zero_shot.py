"""Zero-shot reference: no training. The user vector is the mean of the last N history items' text embeddings;
an item's score is its cosine with that vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.modeling import saved_config
from hyperrec.modeling.finetune import configure_threads, load_state, save_state
from hyperrec.modeling.history import decide_exclusion, exclude_history
from hyperrec.modeling.item_encoder import embed_catalogue, item_texts
from hyperrec.modeling.settings import ItemEncoderSettings, ModelingConfig, RuntimeSettings, ZeroShotSettings
from hyperrec.models.base import Recommender, ScoringBatch

EMBEDDINGS_FILE = "item_embeddings.safetensors"


class ZeroShotRecommender(Recommender):
    """Cosine between the mean of the last ``history_items`` item embeddings and every item embedding.

    ``fit(data, item_embeddings=None)`` only embeds the catalogue (disk-cached); users without history get 0
    for every item (a tie).
    """

    name = "zero_shot_lm"

    def __init__(
        self,
        settings: ZeroShotSettings | None = None,
        *,
        item_encoder: ItemEncoderSettings | None = None,
        runtime: RuntimeSettings | None = None,
    ) -> None:
        self.settings = settings or ZeroShotSettings()
        self.item_encoder_settings = item_encoder or ItemEncoderSettings()
        self.runtime = runtime or RuntimeSettings()
        self.embeddings: np.ndarray | None = None
        self.item_ids: list[str] = []
        self.exclude_history = self.settings.history_penalty == "exclude"

    @classmethod
    def from_config(cls, config: ModelingConfig) -> ZeroShotRecommender:
        return cls(config.zero_shot, item_encoder=config.item_encoder, runtime=config.runtime)

    def fit(self, data: PreparedData, *, item_embeddings: np.ndarray | None = None, **_: object) -> None:
        """Keep the item text embeddings, L2-normalized; nothing trains.

        Other keywords (``validate``, ``on_metrics``) are accepted and ignored.

        Args:
            data: the prepared folder (catalogue; train histories when ``history_penalty`` is ``auto``).
            item_embeddings: (n_items, dim) embeddings by item index; None: embed the item texts (cached).
        """
        configure_threads(self.runtime.threads)
        items = data.items
        self.item_ids = items.sort_values("item_idx")["item_id"].astype(str).tolist()
        if item_embeddings is None:
            texts = item_texts(items, max_tags=self.item_encoder_settings.max_tags,
                               include_categories=self.item_encoder_settings.include_categories)
            item_embeddings = embed_catalogue(texts, self.item_encoder_settings, self.runtime)
        if item_embeddings.shape[0] != len(items):
            raise ModelError(f"item_embeddings has {item_embeddings.shape[0]} rows for {len(items)} items")
        if self.settings.history_penalty == "auto":
            self.exclude_history = decide_exclusion("auto", data.histories(("train",)))
        norms = np.linalg.norm(item_embeddings, axis=1, keepdims=True)
        self.embeddings = (item_embeddings / np.maximum(norms, 1e-12)).astype(np.float32)

    def _require(self) -> np.ndarray:
        if self.embeddings is None:
            raise ModelError("zero-shot model is not fitted; call fit() or load()")
        return self.embeddings

    def user_vectors(self, histories: list[np.ndarray]) -> np.ndarray:
        emb = self._require()
        out = np.zeros((len(histories), emb.shape[1]), dtype=np.float32)
        for row, history in enumerate(histories):
            h = np.asarray(history, dtype=np.int64)
            h = h[(h >= 0) & (h < emb.shape[0])][-self.settings.history_items:]
            if len(h):
                vec = emb[h].mean(0)
                out[row] = vec / max(float(np.linalg.norm(vec)), 1e-12)
        return out

    def score(self, batch: ScoringBatch) -> np.ndarray:
        scores = (self.user_vectors(batch.histories) @ self._require().T).astype(np.float32)
        return exclude_history(scores, batch.histories) if self.exclude_history else scores

    def item_vectors(self) -> np.ndarray:
        return self._require()

    def save(self, directory: Path) -> None:
        """Write the item embeddings and the settings, for ``load``.

        Args:
            directory: the folder to write (created when missing).
        """
        import torch

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_state(directory / EMBEDDINGS_FILE, {"embeddings": torch.from_numpy(self._require())})
        saved_config.write(directory, {
            "class": "ZeroShotRecommender", "model": self.name, **saved_config.sections(self),
            "item_ids": self.item_ids, "exclude_history": self.exclude_history,
        })

    @classmethod
    def load(cls, directory: Path) -> ZeroShotRecommender:
        """Rebuild a fitted zero-shot model from ``save`` output.

        Args:
            directory: a folder written by ``save``.

        Returns:
            The model with its saved embeddings.
        """
        directory = Path(directory)
        config = saved_config.read(directory, "zero-shot model")
        model = cls(ZeroShotSettings.model_validate(config["settings"]), **saved_config.shared(config))
        model.item_ids = list(config.get("item_ids") or [])
        model.exclude_history = bool(config.get("exclude_history", model.exclude_history))
        model.embeddings = load_state(directory / EMBEDDINGS_FILE)["embeddings"].numpy()
        return model
