"""Cross-encoder reranker: ``[CLS] profile [SEP] item text`` -> MiniLM -> linear head -> logit.

Trained on the retriever's hard negatives (its top candidates that are not the next item), pointwise (BCE)
or listwise (softmax CE over the positive and its negatives). At scoring time the retriever's top
``candidates`` (history items excluded) are reranked by the cross-encoder; every other item keeps the
retriever's order below them, so the output is still one score per catalogue item.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.modeling import saved_config
from hyperrec.modeling.bi_encoder import n_training_pairs, text_catalogue, top_k, training_pairs
from hyperrec.modeling.finetune import load_state, prepare_runtime, resolve_device, save_state
from hyperrec.modeling.fitting import fit_with_recipe, validator_or_default
from hyperrec.modeling.item_encoder import TextEncoder
from hyperrec.modeling.profiles import ProfileFn
from hyperrec.modeling.settings import (
    CrossEncoderSettings,
    ItemEncoderSettings,
    ModelingConfig,
    RuntimeSettings,
)
from hyperrec.modeling.trainer import MetricsCallback, TrainResult, Validator
from hyperrec.models.base import Recommender, ScoringBatch

log = logging.getLogger(__name__)

ENCODER_DIR = "encoder"
HEAD_FILE = "head.safetensors"
ITEMS_FILE = "items.parquet"
RETRIEVER_DIR = "retriever"


class CrossEncoderNet(nn.Module):
    """Encoder + dropout + linear head on the [CLS] state."""

    def __init__(self, encoder: TextEncoder, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.dim, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder.hidden_states(**inputs)
        return self.head(self.drop(hidden[:, 0])).squeeze(-1).float()


def _class_path(obj: object) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def _load_class(path: str) -> type[Recommender]:
    module, _, qualname = path.partition(":")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ModelError(f"{path} is not a Recommender")
    return cls


class CrossEncoderReranker(Recommender):
    """Reranks a fitted retriever's top candidates. ``CrossEncoderReranker(retriever, settings, ...)``;
    ``fit(data, validate=None, on_metrics=None)`` trains only the cross-encoder (fit the retriever first)."""

    name = "cross_encoder"

    def __init__(
        self,
        retriever: Recommender,
        settings: CrossEncoderSettings | None = None,
        *,
        item_encoder: ItemEncoderSettings | None = None,
        runtime: RuntimeSettings | None = None,
    ) -> None:
        self.retriever = retriever
        self.settings = settings or CrossEncoderSettings()
        self.item_encoder_settings = item_encoder or ItemEncoderSettings()
        self.runtime = runtime or RuntimeSettings()
        self.net: CrossEncoderNet | None = None
        self.items: pd.DataFrame | None = None
        self.texts: list[str] = []
        self.train_result: TrainResult | None = None
        self._profile: ProfileFn | None = None
        self._device = torch.device("cpu")
        #: Weight of the standardized retriever score added to the logits (settings or chosen on validation).
        self.fusion_weight = 1.0 if self.settings.retriever_weight is None else self.settings.retriever_weight
        self.fusion_results: dict[str, float] = {}
        self._logit_cache: dict[tuple, np.ndarray] | None = None

    @classmethod
    def from_config(cls, config: ModelingConfig, retriever: Recommender) -> CrossEncoderReranker:
        return cls(retriever, config.cross_encoder, item_encoder=config.item_encoder, runtime=config.runtime)

    def _set_items(self, items: pd.DataFrame) -> None:
        self.items, self.texts, self._profile = text_catalogue(
            items, self.item_encoder_settings, profile_max_items=self.settings.profile_max_items,
            max_tokens=self.settings.max_length)

    def _candidates(self, histories: list[np.ndarray], user_ids: list[str], k: int) -> np.ndarray:
        """Retriever top-k per user with history items removed (rows padded with -1)."""
        scores = np.array(self.retriever.score(ScoringBatch(user_ids, histories)), dtype=np.float32)
        for row, history in enumerate(histories):
            h = np.asarray(history, dtype=np.int64)
            scores[row, h[(h >= 0) & (h < scores.shape[1])]] = -np.inf
        idx, vals = top_k(scores, k)
        idx[~np.isfinite(vals)] = -1
        return idx

    def _logits(self, profiles: list[str], items: list[int]) -> torch.Tensor:
        assert self.net is not None
        enc = self.net.encoder.tokenize(
            profiles, self.settings.max_length, pair=[self.texts[i] for i in items]
        )
        return self.net({k: v.to(self._device) for k, v in enc.items()})

    # ------------------------------------------------------------------------------------------ training
    def fit(self, data: PreparedData, *, validate: Validator | None = None,
            on_metrics: MetricsCallback | None = None) -> None:
        """Train the cross-encoder on the retriever's hard negatives, with early stopping; then pick the
        fusion weight on validation unless ``retriever_weight`` fixes it. Fit the retriever first.

        Args:
            data: the prepared folder (train split and catalogue).
            validate: ``validate(model) -> float`` for early stopping and the fusion weight; None:
                ``default_validator``.
            on_metrics: receives training and validation metrics (the pipeline forwards them to MLflow).
        """
        s, t = self.settings, self.settings.training
        self._device = device = prepare_runtime(self.runtime)
        self._set_items(data.items)
        encoder = TextEncoder(
            self.item_encoder_settings.model_path, max_length=s.max_length, dropout=t.dropout
        )
        self.net = net = CrossEncoderNet(encoder, dropout=t.dropout or 0.0).to(device)
        histories = data.histories(("train",))
        rng = np.random.default_rng(self.runtime.seed)
        n_groups = n_training_pairs(histories, per_user=s.examples_per_user, min_prefix=s.min_prefix)
        groups_per_batch = max(1, t.batch_size // (1 + s.negatives_per_positive))
        validate = validator_or_default(validate, data, t, self.runtime)
        self.train_result = fit_with_recipe(
            self, net, data, training=t, runtime=self.runtime, lm_modules=[net.encoder],
            head_modules=[net.head],
            device=device, steps_per_epoch=t.steps_per_epoch(n_groups, groups_per_batch),
            epoch_batches=lambda epoch: self._training_batches(histories, rng, groups_per_batch),
            step=self._step, validate=validate, on_metrics=on_metrics,
        )
        if s.retriever_weight is None:
            self.calibrate_fusion(validate)

    def _training_batches(self, histories: dict[str, np.ndarray], rng: np.random.Generator,
                          groups_per_batch: int) -> Iterator[tuple[list[str], list[int]]]:
        """One epoch of (profiles, items) batches: per drawn history prefix, the next item followed by
        ``negatives_per_positive`` of the retriever's top candidates that are not it (the hard negatives)."""
        s = self.settings
        pairs = training_pairs(histories, per_user=s.examples_per_user, min_prefix=s.min_prefix, rng=rng)
        pairs = [pairs[i] for i in rng.permutation(len(pairs))]
        for start in range(0, len(pairs), groups_per_batch):
            chunk = pairs[start:start + groups_per_batch]
            prefixes = [histories[u][:pos] for u, pos in chunk]
            positives = [int(histories[u][pos]) for u, pos in chunk]
            with torch.no_grad():
                cands = self._candidates(prefixes, [u for u, _ in chunk], s.candidates + 1)
            profiles, items = [], []
            for prefix, pos, row in zip(prefixes, positives, cands):
                negs = self._hard_negatives(pos, row, rng)
                profiles += [self._profile(prefix)] * (1 + s.negatives_per_positive)  # type: ignore[misc]
                items += [pos] + negs
            yield profiles, items

    def _hard_negatives(self, positive: int, candidates: np.ndarray, rng: np.random.Generator) -> list[int]:
        """``negatives_per_positive`` of the candidates other than the positive, padded with uniform draws."""
        n = self.settings.negatives_per_positive
        hard = [int(i) for i in candidates if i >= 0 and i != positive]
        if len(hard) < n:
            extra = rng.choice(len(self.texts), size=n, replace=False)
            hard += [int(i) for i in extra if i != positive and i not in hard]
        return rng.choice(hard, size=n, replace=False).tolist()

    def _step(self, batch: tuple[list[str], list[int]]) -> tuple[torch.Tensor, int]:
        """Loss of groups of (positive, negatives): listwise softmax CE or pointwise BCE."""
        profiles, items = batch
        group = 1 + self.settings.negatives_per_positive
        logits = self._logits(profiles, items)
        if self.settings.loss == "listwise":
            grouped = logits.view(-1, group)
            loss = F.cross_entropy(grouped, torch.zeros(len(grouped), dtype=torch.long, device=logits.device))
        else:
            labels = torch.zeros_like(logits).view(-1, group)
            labels[:, 0] = 1.0
            loss = F.binary_cross_entropy_with_logits(logits, labels.view(-1))
        return loss, len(items) // group

    def calibrate_fusion(self, validate: Validator) -> float:
        """Pick the retriever weight of ``fusion_grid`` with the best validation metric (logits computed
        once).

        Args:
            validate: ``validate(model) -> float``, higher is better.

        Returns:
            The chosen weight (the smallest of equally good ones), also set as ``fusion_weight``.
        """
        self._logit_cache = {}
        try:
            results = {}
            for weight in self.settings.fusion_grid:
                self.fusion_weight = float(weight)
                results[str(weight)] = float(validate(self))
        finally:
            self._logit_cache = None
        best = max(results, key=lambda w: (results[w], -float(w)))
        self.fusion_weight, self.fusion_results = float(best), results
        log.info("cross-encoder fusion: retriever weight %s (validation %s)", best, results)
        return self.fusion_weight

    # ------------------------------------------------------------------------------------------ scoring
    @torch.no_grad()
    def rerank_scores(self, histories: list[np.ndarray], candidates: np.ndarray) -> np.ndarray:
        """Cross-encoder logits of each (user, candidate); -inf where the candidate is -1.

        Args:
            histories: each user's item indices, oldest first (the profile text).
            candidates: (n_users, n_candidates) item indices to score, -1 for none.

        Returns:
            (n_users, n_candidates) float32 logits.
        """
        if self.net is None:
            raise ModelError("cross-encoder is not fitted; call fit() or load()")
        was_training = self.net.training
        self.net.eval()
        out = np.full(candidates.shape, -np.inf, dtype=np.float32)
        pairs = [(r, c) for r in range(candidates.shape[0]) for c in range(candidates.shape[1])
                 if candidates[r, c] >= 0]
        keys = [
            (np.asarray(h, dtype=np.int64).tobytes(), candidates[r].tobytes())
            for r, h in enumerate(histories)
        ]
        if self._logit_cache is not None and all(k in self._logit_cache for k in keys):
            return np.stack([self._logit_cache[k] for k in keys])
        profiles = [self._profile(h) for h in histories]  # type: ignore[misc]
        bs = self.settings.score_batch_size
        try:
            for start in range(0, len(pairs), bs):
                chunk = pairs[start:start + bs]
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                    enabled=self.runtime.bf16_autocast and self._device.type == "cuda"):
                    logits = self._logits(
                        [profiles[r] for r, _ in chunk], [int(candidates[r, c]) for r, c in chunk]
                    )
                for (r, c), value in zip(chunk, logits.float().cpu().numpy()):
                    out[r, c] = value
        finally:
            self.net.train(was_training)
        if self._logit_cache is not None:
            self._logit_cache.update(zip(keys, out))
        return out

    def score(self, batch: ScoringBatch) -> np.ndarray:
        """Score the catalogue: the reranked candidates, fused with the retriever, above every other item.

        Args:
            batch: the users and their histories.

        Returns:
            (n_users, n_items) float32 scores; the other items keep the retriever's order below the
            candidates, and items the retriever scores -inf stay -inf.
        """
        base = np.array(self.retriever.score(batch), dtype=np.float64)
        n_users, n_items = base.shape
        cands = self._candidates(batch.histories, batch.user_ids, self.settings.candidates)
        logits = self.rerank_scores(batch.histories, cands)
        out = np.empty((n_users, n_items), dtype=np.float32)
        for row in range(n_users):
            keep = cands[row] >= 0
            fused = logits[row][keep].astype(np.float64)
            if self.fusion_weight and keep.sum() > 1:
                retrieved = base[row][cands[row][keep]]
                fused = fused + self.fusion_weight * (retrieved - retrieved.mean()) / max(
                    retrieved.std(), 1e-9
                )
            floor = float(fused.min()) if keep.any() else 0.0
            # everything else: below the reranked block, in the retriever's order, within (floor-2, floor-1)
            order = np.argsort(np.argsort(-base[row], kind="stable"), kind="stable")
            out[row] = floor - 1.0 - order / max(n_items, 1)
            out[row, ~np.isfinite(base[row])] = -np.inf
            out[row, cands[row][keep]] = fused
        return out

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write the encoder, the head, the items table, the retriever and the settings, for ``load``.

        Args:
            directory: the folder to write (created when missing).
        """
        if self.net is None or self.items is None:
            raise ModelError("cross-encoder is not fitted; nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.net.encoder.save_pretrained(directory / ENCODER_DIR)
        save_state(directory / HEAD_FILE, {f"head.{k}": v for k, v in self.net.head.state_dict().items()})
        self.items.to_parquet(directory / ITEMS_FILE, index=False)
        self.retriever.save(directory / RETRIEVER_DIR)
        saved_config.write(directory, {
            "class": "CrossEncoderReranker",
            "model": self.name,
            "retriever_class": _class_path(self.retriever),
            **saved_config.sections(self),
            "train_result": self.train_result.to_dict() if self.train_result else None,
            "fusion_weight": self.fusion_weight,
            "fusion_results": self.fusion_results,
        })

    @classmethod
    def load(cls, directory: Path) -> CrossEncoderReranker:
        """Rebuild a fitted reranker, and its retriever, from ``save`` output.

        Args:
            directory: a folder written by ``save``.

        Returns:
            The reranker in eval mode on the runtime's device, with its saved fusion weight.
        """
        directory = Path(directory)
        config = saved_config.read(directory, "cross-encoder")
        retriever = _load_class(config["retriever_class"]).load(directory / RETRIEVER_DIR)
        model = cls(retriever, CrossEncoderSettings.model_validate(config["settings"]),
                    **saved_config.shared(config))
        model._device = resolve_device(model.runtime.device)
        model._set_items(pd.read_parquet(directory / ITEMS_FILE))
        encoder = TextEncoder(directory / ENCODER_DIR, max_length=model.settings.max_length)
        model.net = CrossEncoderNet(encoder, dropout=0.0)
        head = load_state(directory / HEAD_FILE)
        model.net.head.load_state_dict({k.removeprefix("head."): v for k, v in head.items()})
        model.net.to(model._device).eval()
        model.train_result = saved_config.train_result(config)
        model.fusion_weight = float(config.get("fusion_weight", model.fusion_weight))
        model.fusion_results = dict(config.get("fusion_results") or {})
        return model
