"""The default ranker: a SASRec-style causal transformer over the user's item sequence.

Item vectors come from the language model: the (frozen, cached) text embedding of each item goes through a
learned projection, optionally plus a per-item ID embedding; the same vectors are the input tokens and the
output classes, so one matrix product scores the whole catalogue and items never seen in training still get a
score from their text (cold start). ``use_text=False`` is the ID-only ablation (same class, same budget).
An optional segment embedding conditions one shared model on the user's segment.

This module is the ``Recommender``: fit, score, save and load. Its parts: the network
(``next_item_net``), the training windows (``next_item_windows``), the losses (``next_item_loss``), the
item encoder's side (``next_item_text``) and the scoring graph shared with serving (``next_item_graph``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.features import encode_histories, encode_segments
from hyperrec.modeling import saved_config
from hyperrec.modeling.cold_items import fit_cold_slot, saved_slot, text_vectors
from hyperrec.modeling.finetune import load_state, prepare_runtime, resolve_device, save_state
from hyperrec.modeling.fitting import fit_with_recipe
from hyperrec.modeling.history import AUTO_REPEAT_RATE, repeat_rate
from hyperrec.modeling.item_encoder import TextEncoder
from hyperrec.modeling.next_item_graph import NextItemGraph
from hyperrec.modeling.next_item_loss import full_softmax_loss, sampled_softmax_loss
from hyperrec.modeling.next_item_net import NextItemNet, mark_text_only_items, target_shares, warm_start_net
from hyperrec.modeling.next_item_text import ItemText
from hyperrec.modeling.next_item_windows import TrainingWindows
from hyperrec.modeling.recipe import DataShape, resolve_next_item
from hyperrec.modeling.settings import ItemEncoderSettings, ModelingConfig, NextItemSettings, RuntimeSettings
from hyperrec.modeling.text_alignment import text_id_alignment_loss
from hyperrec.modeling.trainer import MetricsCallback, TrainResult, Validator, data_parallel
from hyperrec.models.base import Recommender, ScoringBatch
from hyperrec.online.cold_items import ColdSlot, reserve_cold_slot

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"
SEGMENTS_JSON = "segments.json"
ENCODER_DIR = "item_encoder"


class NextItemRecommender(Recommender):
    """The LM next-item model (``settings.use_text=True``) or its ID-only ablation (``use_text=False``, see
    ``IDOnlyNextItemRecommender``, the registry name of a saved ablation).

    ``fit(data, validate=None, on_metrics=None, item_embeddings=None)``: ``validate(model) -> float`` drives
    early stopping (default: the evaluation harness's validation NDCG@10, or a local one); ``item_embeddings``
    (n_items, dim) skips the text encoder (e.g. shared with the zero-shot model).
    """

    name = "next_item_lm"

    def __init__(self, settings: NextItemSettings | None = None, *,
                 item_encoder: ItemEncoderSettings | None = None,
                 runtime: RuntimeSettings | None = None) -> None:
        self.settings = settings or NextItemSettings()
        self.item_encoder_settings = item_encoder or ItemEncoderSettings()
        self.runtime = runtime or RuntimeSettings()
        if not self.settings.use_text:
            self.name = IDOnlyNextItemRecommender.name
        self.net: NextItemNet | None = None
        self._text = ItemText(batch_size=self.item_encoder_settings.batch_size)
        self.segments: dict[str, int] = {}
        self.n_segments = 0
        self.item_ids: list[str] = []
        self.train_result: TrainResult | None = None
        self._device = torch.device("cpu")
        #: Whether scoring pushes history items below all others (decided at fit from history_penalty).
        self.exclude_history = self.settings.history_penalty == "exclude"
        self.train_repeat_rate: float | None = None
        self._unseen: torch.Tensor | None = None
        self._target_share: torch.Tensor | None = None
        #: The reserved rank for the best item without training history (fitted on validation after training).
        self.cold_slot: ColdSlot | None = None

    @property
    def encoder(self) -> TextEncoder | None:
        """The item encoder when it trains with the model (``finetune_item_encoder``), else None."""
        return self._text.encoder

    @classmethod
    def from_config(cls, config: ModelingConfig, *, ablation: bool = False) -> NextItemRecommender:
        """The configured model; ``ablation=True`` gives the ID-only variant with the same budget."""
        settings = config.next_item
        if ablation:
            settings = settings.model_copy(update={"use_text": False, "use_id_embedding": True,
                                                   "finetune_item_encoder": False})
            return IDOnlyNextItemRecommender(settings, item_encoder=config.item_encoder,
                                             runtime=config.runtime)
        return cls(settings, item_encoder=config.item_encoder, runtime=config.runtime)

    # ------------------------------------------------------------------------------------------ training
    def _segment_index(self, users: list[str]) -> np.ndarray:
        unknown = self.n_segments
        return np.array([self.segments.get(u, unknown) for u in users], dtype=np.int64)

    def _load_segments(self, data: PreparedData) -> None:
        if not self.settings.use_segment:
            return
        try:
            frame = data.segments
        except Exception as exc:
            raise ModelError(f"next_item.use_segment needs segments.parquet: {exc}") from exc
        self.segments = {str(u): int(s) for u, s in zip(frame["user_id"], frame["segment"])}
        self.n_segments = (max(self.segments.values()) + 1) if self.segments else 0

    def fit(self, data: PreparedData, *, validate: Validator | None = None,
            on_metrics: MetricsCallback | None = None, item_embeddings: np.ndarray | None = None,
            warm_start: Path | None = None) -> None:
        """Train on the train split, with early stopping on validation, then fit the cold slot.

        Args:
            data: the prepared folder (train split, catalogue, segments).
            validate: ``validate(model) -> float`` for early stopping; None: ``default_validator``.
            on_metrics: receives training and validation metrics (the pipeline forwards them to MLflow).
            item_embeddings: (n_items, dim) frozen text embeddings; None: embed the catalogue (cached).
            warm_start: a saved model of the same kind (the champion) whose weights initialize every tensor
                of matching shape (item tables only when the catalogue is unchanged).
        """
        self.settings, _ = resolve_next_item(self.settings, DataShape.of(data))
        self.cold_slot = None
        self._device = prepare_runtime(self.runtime)
        self.item_ids = data.items.sort_values("item_idx")["item_id"].astype(str).tolist()
        self._load_segments(data)
        net = self._build_net(data.items, item_embeddings, warm_start)
        histories = data.histories(("train",))
        self._unseen = self._unseen_items(histories, net.n_items, net, self._device)
        self._target_share = (target_shares(histories, net.n_items, self._device)
                              if self.settings.sampled_logq_correction else None)
        self._decide_history_penalty(histories)
        windows = TrainingWindows(histories, net.n_items, self.settings, self._segment_index,
                                  self.runtime.seed)
        log.info("%s: %d users, %d windows, %d target events, %d items", self.name, len(windows.users),
                 len(windows), windows.n_targets(), net.n_items)
        self.train_result = self._train(net, windows, data, validate, on_metrics)
        self._text.token_cache = None  # the refreshed table holds what scoring needs; free the token states
        if net.text_dim:
            self._refresh_text_table()  # the slot's vectors are the text table that scoring and save() use
            self.cold_slot = fit_cold_slot(self, data, np.flatnonzero(net.text_only.cpu().numpy()),
                                           self.settings.cold_slot, seed=self.runtime.seed,
                                           vectors=text_vectors(net.text_table.cpu().numpy()))

    def _build_net(self, items: pd.DataFrame, item_embeddings: np.ndarray | None,
                   warm_start: Path | None) -> NextItemNet:
        """A fresh net on the device with its text table (and a trainable item encoder when configured)."""
        self._text, table = ItemText.build(items, self.settings, self.item_encoder_settings, self.runtime,
                                           self._device, item_embeddings)
        text_dim = None if table is None else int(table.shape[1])
        self.net = net = NextItemNet(len(items), text_dim, self.settings, self.n_segments)
        if warm_start is not None:
            warm_start_net(net, Path(warm_start) / WEIGHTS_FILE)
        if table is not None:
            net.text_table.copy_(table)
        return net.to(self._device)

    def _decide_history_penalty(self, histories: dict[str, np.ndarray]) -> None:
        """With ``history_penalty=auto``: exclude history items unless the train data repeats items."""
        self.train_repeat_rate = repeat_rate(histories)
        if self.settings.history_penalty == "auto":
            self.exclude_history = self.train_repeat_rate < AUTO_REPEAT_RATE
            log.info("%s: %.2f%% of train events repeat an item; history items %s", self.name,
                     100 * self.train_repeat_rate,
                     "excluded" if self.exclude_history else "get a learned offset")

    def _train(self, net: NextItemNet, windows: TrainingWindows, data: PreparedData,
               validate: Validator | None, on_metrics: MetricsCallback | None) -> TrainResult:
        """The optimizer, the schedule and the validator around ``Trainer.fit``; the best state is kept."""
        t, device = self.settings.training, self._device
        sample_gen = torch.Generator().manual_seed(self.runtime.seed)

        def loss(inputs: torch.Tensor, targets: torch.Tensor, segs: torch.Tensor) -> tuple[torch.Tensor, int]:
            return self._loss(inputs, targets, segs, sample_gen)

        step, epoch_batches = data_parallel(net, loss, windows.epoch_batches, device)
        lm_modules = [self.encoder] if self.encoder is not None else []
        start = time.perf_counter()
        result = fit_with_recipe(
            self, nn.ModuleList([net] + lm_modules), data, training=t, runtime=self.runtime,
            lm_modules=lm_modules, head_modules=[net], device=device, steps_per_epoch=windows.steps_per_epoch,
            epoch_batches=epoch_batches, step=step, validate=validate, on_metrics=on_metrics,
            invalidate=self._refresh_text_table,
        )
        log.info("%s trained in %.1fs (%.0f examples/s), best val %s", self.name, time.perf_counter() - start,
                 result.examples_per_second, result.best_metric)
        return result

    def _unseen_items(self, histories: dict[str, np.ndarray], n_items: int, net: NextItemNet,
                      device: torch.device) -> torch.Tensor | None:
        """Items with no train event; with unseen_items_from_text they are the net's text-only items."""
        if not self.settings.unseen_items_from_text:
            return None
        unseen = mark_text_only_items(net, histories, device)
        log.info("%s: %d items have no train event; they are scored from their text", self.name,
                 int(unseen.sum()))
        return unseen

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor, segs: torch.Tensor,
              gen: torch.Generator) -> tuple[torch.Tensor, int]:
        """(mean loss, number of targets) of one batch with the configured loss (``next_item_loss``)."""
        net, s = self._require(), self.settings
        if s.loss == "full_softmax":
            loss, n = full_softmax_loss(net, self._text, inputs, targets, segs, gen,
                                        n_live=s.live_items_per_step, unseen=self._unseen)
        else:
            loss, n = sampled_softmax_loss(net, self._text, inputs, targets, segs, gen,
                                           n_negatives=s.n_sampled_negatives, unseen=self._unseen,
                                           target_share=self._target_share)
        if s.text_id_alignment > 0 and net.text_dim and net.id_emb is not None:
            loss = loss + s.text_id_alignment * text_id_alignment_loss(
                net, targets, gen, max_items=s.alignment_items, temperature=s.alignment_temperature)
        return loss, n

    def _refresh_text_table(self) -> None:
        """After steps that trained the item encoder, re-embed the catalogue for scoring."""
        if self.net is not None:
            self._text.refresh(self.net, self._device)

    # ------------------------------------------------------------------------------------------ scoring
    def _require(self) -> NextItemNet:
        if self.net is None:
            raise ModelError(f"{self.name} is not fitted; call fit() or load()")
        return self.net

    def _sequences(self, histories: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        net = self._require()
        rows = [np.asarray(h, dtype=np.int64) for h in histories]
        tokens = encode_histories([h[(h >= 0) & (h < net.n_items)] for h in rows], net.max_len)
        # The shared serving tokens (item_idx + 1, 0 = pad) in the model's own index space (pad = n_items).
        seq = torch.from_numpy(np.where(tokens > 0, tokens - 1, net.pad)).to(self._device)
        return seq, seq != net.pad

    def scoring_graph(self) -> NextItemGraph:
        """The module that scores tokens of ``hyperrec.features``: used here and exported for serving."""
        net = self._require()
        self._refresh_text_table()
        return NextItemGraph(net, exclude_history=self.exclude_history)

    @torch.no_grad()
    def score(self, batch: ScoringBatch) -> np.ndarray:
        """Score the catalogue with ``scoring_graph``, then reserve the cold slot when one was fitted.

        Args:
            batch: the users and their histories (indices outside the catalogue are dropped).

        Returns:
            (n_users, n_items) float32 scores.
        """
        net = self._require()
        histories = [np.asarray(h, dtype=np.int64) for h in batch.histories]
        histories = [h[(h >= 0) & (h < net.n_items)] for h in histories]
        # Every history item is read (the penalty covers all of them); the transformer keeps the last max_len.
        history = torch.from_numpy(
            encode_histories(histories, max(1, *(len(h) for h in histories)))).to(self._device)
        segment = torch.from_numpy(
            encode_segments([self.segments.get(u) for u in batch.user_ids])).to(self._device)
        graph = self.scoring_graph()
        was_training = net.training
        net.eval()
        try:
            scores = graph(history, segment)
        finally:
            net.train(was_training)
        scores = scores.float().cpu().numpy().astype(np.float32, copy=False)
        return (scores if self.cold_slot is None
                else reserve_cold_slot(scores, self.cold_slot, histories=histories))

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        """(n_items, d_model) item vectors of the model's output space (used by explanations)."""
        net = self._require()
        self._refresh_text_table()
        return net.item_vectors().float().cpu().numpy()

    @torch.no_grad()
    def last_attention(self, history: np.ndarray,
                       user_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(items actually read, attention of the last position over them, averaged over heads).

        Args:
            history: the user's item indices, oldest first.
            user_id: the user, for the segment embedding; None: an unknown segment.

        Returns:
            Two arrays of equal length: the item indices the transformer read and their attention weights.
        """
        net = self._require()
        net.eval()
        seq, valid = self._sequences([history])
        segs = torch.from_numpy(self._segment_index([user_id or ""])).to(self._device)
        all_vecs = net.item_vectors()
        padded_vecs = torch.cat([all_vecs, all_vecs.new_zeros(1, all_vecs.shape[1])])
        _, weights = net.hidden(padded_vecs[seq], valid, segs if net.segment_emb is not None else None,
                                need_weights=True)
        assert weights is not None
        att = weights[0, :, -1].mean(0)  # (L,)
        keep = valid[0]
        return seq[0][keep].cpu().numpy(), att[keep].float().cpu().numpy()

    # ------------------------------------------------------------------------------------------ persistence
    def _config_dict(self) -> dict[str, Any]:
        net = self._require()
        return {
            "class": "NextItemRecommender",
            "model": self.name,
            "n_items": net.n_items,
            "text_dim": net.text_dim,
            "n_segments": self.n_segments,
            **saved_config.sections(self),
            "item_ids": self.item_ids,
            "exclude_history": self.exclude_history,
            "train_repeat_rate": self.train_repeat_rate,
            "train_result": self.train_result.to_dict() if self.train_result else None,
            "cold_slot": self.cold_slot.to_dict() if self.cold_slot is not None else None,
        }

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._refresh_text_table()
        save_state(directory / WEIGHTS_FILE, self._require().state_dict(), {"format": "hyperrec.next_item/1"})
        saved_config.write(directory, self._config_dict())
        (directory / SEGMENTS_JSON).write_text(json.dumps(self.segments), encoding="utf-8")
        if self.encoder is not None:
            self.encoder.save_pretrained(directory / ENCODER_DIR)

    @classmethod
    def load(cls, directory: Path) -> NextItemRecommender:
        directory = Path(directory)
        config = saved_config.read(directory, "next-item model")
        settings = NextItemSettings.model_validate(config["settings"])
        if config.get("model") not in (NextItemRecommender.name, IDOnlyNextItemRecommender.name):
            raise ModelError(f"{directory} holds model {config.get('model')!r}, not a next-item model")
        target = IDOnlyNextItemRecommender if cls is NextItemRecommender and not settings.use_text else cls
        model = target(settings, **saved_config.shared(config))
        model.item_ids = list(config.get("item_ids") or [])
        model.exclude_history = bool(config.get("exclude_history", model.exclude_history))
        model.train_repeat_rate = config.get("train_repeat_rate")
        model.n_segments = int(config["n_segments"])
        model.segments = {str(k): int(v) for k, v in
                          json.loads((directory / SEGMENTS_JSON).read_text(encoding="utf-8")).items()}
        model.train_result = saved_config.train_result(config)
        model._device = resolve_device(model.runtime.device)
        net = NextItemNet(int(config["n_items"]), config["text_dim"], settings, model.n_segments)
        state = load_state(directory / WEIGHTS_FILE)
        # Models saved before text-only scoring existed lack these two (all-False / zero is what they did).
        missing = {"text_only", "cold_bias"} - set(state)
        incompatible = net.load_state_dict(state, strict=not missing)
        if set(incompatible.missing_keys) - missing or incompatible.unexpected_keys:
            raise ModelError(f"{directory / WEIGHTS_FILE} does not fit the saved settings: {incompatible}")
        model.net = net.to(model._device).eval()
        model.cold_slot = saved_slot(config.get("cold_slot"),
                                     net.text_table.cpu().numpy() if net.text_dim else None)
        if (directory / ENCODER_DIR).exists():
            encoder = TextEncoder(directory / ENCODER_DIR, max_length=model.item_encoder_settings.max_length)
            model._text = ItemText(encoder.to(model._device).eval(),
                                   batch_size=model.item_encoder_settings.batch_size)
        return model


class IDOnlyNextItemRecommender(NextItemRecommender):
    """The ablation: the same model and budget with per-item ID embeddings only (no language model)."""

    name = "next_item_id"

    def __init__(self, settings: NextItemSettings | None = None, *,
                 item_encoder: ItemEncoderSettings | None = None,
                 runtime: RuntimeSettings | None = None) -> None:
        settings = (settings or NextItemSettings()).model_copy(
            update={"use_text": False, "use_id_embedding": True, "finetune_item_encoder": False})
        super().__init__(settings, item_encoder=item_encoder, runtime=runtime)
