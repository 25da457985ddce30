"""The default ranker: a SASRec-style causal transformer over the user's item sequence.

Item vectors come from the language model: the (frozen, cached) text embedding of each item goes through a
learned projection, optionally plus a per-item ID embedding; the same vectors are the input tokens and the
output classes, so one matrix product scores the whole catalogue and items never seen in training still get a
score from their text (cold start). ``use_text=False`` is the ID-only ablation (same class, same budget).
An optional segment embedding conditions one shared model on the user's segment.

Training: every position of every training window predicts the next item with cross-entropy over the whole
catalogue (``full_softmax``) or over the targets plus shared uniform negatives (``sampled_softmax``).
With ``finetune_item_encoder`` (full profile) the LM item encoder trains end-to-end on the items in each batch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.features import encode_histories, encode_segments
from hyperrec.modeling.batching import trim_left_padding
from hyperrec.modeling.cold_items import fit_cold_slot, saved_slot, text_vectors
from hyperrec.modeling.finetune import (
    MetricsCallback,
    Trainer,
    TrainResult,
    Validator,
    build_optimizer,
    data_parallel,
    load_state,
    param_groups,
    prepare_runtime,
    resolve_device,
    save_state,
    warmup_schedule,
)
from hyperrec.modeling.history import AUTO_REPEAT_RATE, repeat_rate
from hyperrec.modeling.item_encoder import TextEncoder, embed_catalogue, item_texts
from hyperrec.modeling.next_item_graph import NextItemGraph
from hyperrec.modeling.recipe import DataShape, resolve_next_item
from hyperrec.modeling.settings import ItemEncoderSettings, ModelingConfig, NextItemSettings, RuntimeSettings
from hyperrec.modeling.token_cache import TokenStateCache, cached_encoder, live_text_table
from hyperrec.models.base import Recommender, ScoringBatch
from hyperrec.online.cold_items import ColdSlot, reserve_cold_slot

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"

CONFIG_FILE = "model.json"  # the registry reads its "model" key
SEGMENTS_JSON = "segments.json"
ENCODER_DIR = "item_encoder"


class CausalBlock(nn.Module):
    """Pre-LN transformer block with causal self-attention (attention weights available for explanations)."""

    def __init__(self, d_model: int, n_heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(batch, length, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        weights = None
        if need_weights:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            weights = att
            out = att @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                 dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(out.transpose(1, 2).reshape(batch, length, d)))
        x = x + self.drop(self.ffn(self.ln2(x)))
        return x, weights


class NextItemNet(nn.Module):
    """Item vectors (projected text embedding + ID embedding) -> causal transformer -> hidden states."""

    def __init__(self, n_items: int, text_dim: int | None, settings: NextItemSettings, n_segments: int = 0) -> None:
        super().__init__()
        s = settings
        self.n_items, self.d_model, self.max_len = n_items, s.d_model, s.max_seq_len
        self.text_dim = text_dim if s.use_text else None
        self.pad = n_items
        if self.text_dim:
            self.register_buffer("text_table", torch.zeros(n_items, self.text_dim), persistent=True)
            self.text_proj = nn.Linear(self.text_dim, s.d_model)
        self.id_emb = nn.Embedding(n_items, s.d_model) if s.use_id_embedding else None
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        #: Items scored from their text alone (no train event): no ID embedding, the shared cold_bias.
        self.register_buffer("text_only", torch.zeros(n_items, dtype=torch.bool), persistent=True)
        self.cold_bias = nn.Parameter(torch.zeros(()))
        self.id_dropout = s.id_dropout if self.text_dim and self.id_emb is not None else 0.0
        #: Learned score offset of items already in the history read (re-consumption); None when disabled.
        self.repeat_bias = nn.Parameter(torch.zeros(())) if s.history_penalty in ("auto", "learned") else None
        self.pos_emb = nn.Embedding(s.max_seq_len, s.d_model)
        self.segment_emb = nn.Embedding(n_segments + 1, s.d_model) if n_segments > 0 else None
        self.emb_drop = nn.Dropout(s.dropout)
        self.blocks = nn.ModuleList(
            CausalBlock(s.d_model, s.n_heads, s.ffn_multiplier * s.d_model, s.dropout) for _ in range(s.n_layers)
        )
        self.final_ln = nn.LayerNorm(s.d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
        if self.segment_emb is not None:
            nn.init.zeros_(self.segment_emb.weight)

    def text_only_mask(self, idx: torch.Tensor | None = None, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
        """Which of items ``idx`` (all when None) are scored from text alone: those without a train event,
        plus, when ``generator`` is given (a training step), a random ``id_dropout`` share of the others."""
        mask = self.text_only if idx is None else self.text_only[idx]
        if generator is not None and self.id_dropout > 0:
            drawn = torch.rand(mask.shape, generator=generator).to(mask.device) < self.id_dropout
            mask = mask | drawn
        return mask

    def item_vectors(self, idx: torch.Tensor | None = None, text: torch.Tensor | None = None,
                     text_only: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of items ``idx`` (all items when None); ``text`` overrides the cached text embeddings;
        ``text_only`` (default: ``text_only_mask(idx)``) marks items whose ID embedding is left out."""
        out: torch.Tensor | None = None
        if self.text_dim:
            if text is None:
                text = self.text_table if idx is None else self.text_table[idx]
            out = self.text_proj(text)
        if self.id_emb is not None:
            ids = self.id_emb.weight if idx is None else self.id_emb(idx)
            keep = ~(self.text_only_mask(idx) if text_only is None else text_only)
            ids = ids * keep.unsqueeze(-1).to(ids.dtype)
            out = ids if out is None else out + ids
        assert out is not None
        return out

    def biases(self, idx: torch.Tensor | None = None, text_only: torch.Tensor | None = None) -> torch.Tensor:
        """Item score offsets: the learned item bias, or the shared cold_bias for text-only items."""
        bias = self.item_bias if idx is None else self.item_bias[idx]
        mask = self.text_only_mask(idx) if text_only is None else text_only
        return torch.where(mask, self.cold_bias, bias)

    def hidden(self, seq_vectors: torch.Tensor, valid: torch.Tensor, segments: torch.Tensor | None = None,
               need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """seq_vectors (B, L, d) of a left-padded sequence, valid (B, L) -> hidden (B, L, d) [+ last attention]."""
        length = seq_vectors.shape[1]
        x = seq_vectors * valid.unsqueeze(-1).to(seq_vectors.dtype)
        x = x + self.pos_emb.weight[self.max_len - length:].unsqueeze(0)
        if self.segment_emb is not None and segments is not None:
            x = x + self.segment_emb(segments).unsqueeze(1)
        x = self.emb_drop(x)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=x.device)
        mask = (causal.unsqueeze(0) & (valid.unsqueeze(1) | eye.unsqueeze(0))).unsqueeze(1)  # (B, 1, L, L)
        weights = None
        for i, block in enumerate(self.blocks):
            x, w = block(x, mask, need_weights=need_weights and i == len(self.blocks) - 1)
            weights = w if w is not None else weights
        return self.final_ln(x), weights


def _history_pairs(inputs: torch.Tensor, valid_in: torch.Tensor, valid_out: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) pairs: row = index of a predicted position in ``hidden[valid_out]`` order, position =
    a flat index into ``inputs`` of an item at or before it (what that prediction has already seen)."""
    batch, length = inputs.shape
    row_id = torch.full((batch, length), -1, dtype=torch.long, device=inputs.device)
    row_id[valid_out] = torch.arange(int(valid_out.sum()), device=inputs.device)
    t_idx, s_idx = torch.tril_indices(length, length, device=inputs.device)  # s <= t
    rows = row_id[:, t_idx]
    ok = (rows >= 0) & valid_in[:, s_idx]
    positions = (torch.arange(batch, device=inputs.device).unsqueeze(1) * length + s_idx.unsqueeze(0))
    return rows[ok], positions[ok]


def _add_repeat_bias(logits: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, bias: torch.Tensor
                     ) -> torch.Tensor:
    """logits[rows, cols] += bias once per distinct (row, col) pair (in place; differentiable in bias)."""
    keep = cols >= 0
    flat = torch.unique(rows[keep] * logits.shape[1] + cols[keep])
    return logits.index_put_((flat // logits.shape[1], flat % logits.shape[1]), bias.expand(len(flat)),
                             accumulate=True)


def _warm_start(net: NextItemNet, directory: Path) -> None:
    """Copy every tensor of a saved model whose name and shape match ``net``'s; log what was reused."""
    state = load_state(directory / WEIGHTS_FILE)
    own = net.state_dict()
    reused = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(reused, strict=False)
    log.info("warm start from %s: %d of %d tensors reused", directory, len(reused), len(own))


def _windows(sequence: np.ndarray, max_len: int, stride: int) -> list[np.ndarray]:
    """Chunks of up to max_len + 1 items covering every next-item target of the sequence."""
    out = []
    end = len(sequence)
    while end >= 2:
        out.append(sequence[max(0, end - max_len - 1):end])
        end -= stride
    return out


def _training_windows(histories: dict[str, np.ndarray], users: list[str], n_items: int, s: NextItemSettings,
                      rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[str]]:
    """Left-padded (n_windows, max_seq_len + 1) training windows and each window's user; with ``rng``, every
    user's items are first put in a random order (the count of windows per user does not change)."""
    stride = s.window_stride or s.max_seq_len
    windows, window_users = [], []
    for user in users:
        seq = histories[user]
        seq = seq[(seq >= 0) & (seq < n_items)]
        if rng is not None:
            seq = rng.permutation(seq)
        for w in _windows(seq, s.max_seq_len, stride):
            windows.append(w)
            window_users.append(user)
    if not windows:
        raise ModelError("no training sequences: every user needs at least 2 train interactions")
    return _left_pad(windows, s.max_seq_len + 1, n_items), window_users


def _left_pad(rows: list[np.ndarray], length: int, pad: int) -> np.ndarray:
    out = np.full((len(rows), length), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        row = row[-length:]
        if len(row):
            out[i, length - len(row):] = row
    return out


class NextItemRecommender(Recommender):
    """The LM next-item model (``settings.use_text=True``) or its ID-only ablation (``use_text=False``, see
    ``IDOnlyNextItemRecommender``, the registry name of a saved ablation).

    ``fit(data, validate=None, on_metrics=None, item_embeddings=None)``: ``validate(model) -> float`` drives
    early stopping (default: the evaluation harness's validation NDCG@10, or a local one); ``item_embeddings``
    (n_items, dim) skips the text encoder (e.g. shared with the zero-shot model).
    """

    name = "next_item_lm"

    def __init__(self, settings: NextItemSettings | None = None, *, item_encoder: ItemEncoderSettings | None = None,
                 runtime: RuntimeSettings | None = None) -> None:
        self.settings = settings or NextItemSettings()
        self.item_encoder_settings = item_encoder or ItemEncoderSettings()
        self.runtime = runtime or RuntimeSettings()
        if not self.settings.use_text:
            self.name = IDOnlyNextItemRecommender.name
        self.net: NextItemNet | None = None
        self.encoder: TextEncoder | None = None
        self.segments: dict[str, int] = {}
        self.n_segments = 0
        self.item_ids: list[str] = []
        self.train_result: TrainResult | None = None
        self._device = torch.device("cpu")
        self._texts_stale = False
        self._tokens: dict[str, torch.Tensor] | None = None
        self._token_cache: TokenStateCache | None = None
        #: Whether scoring pushes history items below all others (decided at fit from history_penalty).
        self.exclude_history = self.settings.history_penalty == "exclude"
        self.train_repeat_rate: float | None = None
        self._unseen: torch.Tensor | None = None
        #: The reserved rank for the best item without training history (fitted on validation after training).
        self.cold_slot: ColdSlot | None = None

    @classmethod
    def from_config(cls, config: ModelingConfig, *, ablation: bool = False) -> NextItemRecommender:
        """The configured model; ``ablation=True`` gives the ID-only variant with the same budget."""
        settings = config.next_item
        if ablation:
            settings = settings.model_copy(update={"use_text": False, "use_id_embedding": True,
                                                   "finetune_item_encoder": False})
            return IDOnlyNextItemRecommender(settings, item_encoder=config.item_encoder, runtime=config.runtime)
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
        """Train on the train split; ``warm_start`` is a saved model of the same kind (the champion) whose
        weights initialize every tensor of matching shape (item tables only when the catalogue is unchanged)."""
        self.settings, _ = resolve_next_item(self.settings, DataShape.of(data))
        self.cold_slot = None
        s, t = self.settings, self.settings.training
        self._device = device = prepare_runtime(self.runtime)
        items = data.items
        n_items = len(items)
        self.item_ids = items.sort_values("item_idx")["item_id"].astype(str).tolist()
        self._load_segments(data)

        text_dim = None
        table = None
        if s.use_text:
            texts = item_texts(items, max_tags=self.item_encoder_settings.max_tags,
                               include_categories=self.item_encoder_settings.include_categories)
            if s.finetune_item_encoder:
                self.encoder = TextEncoder(self.item_encoder_settings.model_path,
                                           max_length=self.item_encoder_settings.max_length,
                                           dropout=t.dropout).to(device)
                if s.token_cache:
                    self._token_cache = cached_encoder(self.encoder, texts, t.unfreeze_schedule,
                                                       batch_size=self.item_encoder_settings.batch_size)
                    item_embeddings = self._token_cache.encode_all().numpy()
                else:
                    self._tokens = self.encoder.tokenize(texts)
            if item_embeddings is None:
                item_embeddings = embed_catalogue(texts, self.item_encoder_settings, self.runtime,
                                                  encoder=self.encoder)
            if item_embeddings.shape[0] != n_items:
                raise ModelError(f"item_embeddings has {item_embeddings.shape[0]} rows for {n_items} items")
            text_dim = int(item_embeddings.shape[1])
            table = torch.from_numpy(np.ascontiguousarray(item_embeddings, dtype=np.float32))

        self.net = net = NextItemNet(n_items, text_dim, s, self.n_segments)
        if warm_start is not None:
            _warm_start(net, Path(warm_start))
        if table is not None:
            net.text_table.copy_(table)
        net.to(device)

        histories = data.histories(("train",))
        self._unseen = self._unseen_items(histories, n_items, net, device)
        self.train_repeat_rate = repeat_rate(histories)
        if s.history_penalty == "auto":
            self.exclude_history = self.train_repeat_rate < AUTO_REPEAT_RATE
            log.info("%s: %.2f%% of train events repeat an item; history items %s", self.name,
                     100 * self.train_repeat_rate, "excluded" if self.exclude_history else "get a learned offset")
        users = sorted(histories)
        gen = np.random.default_rng(self.runtime.seed)
        padded, window_users = _training_windows(histories, users, n_items, s)
        inputs_all = torch.from_numpy(padded[:, :-1])
        targets_all = torch.from_numpy(padded[:, 1:])
        segments_all = torch.from_numpy(self._segment_index(window_users))
        n_windows = len(window_users)
        steps_per_epoch = math.ceil(n_windows / t.batch_size)
        if t.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, t.max_steps_per_epoch)
        log.info("%s: %d users, %d windows, %d target events, %d items", self.name, len(users), n_windows,
                 int((targets_all != n_items).sum()), n_items)

        sample_gen = torch.Generator().manual_seed(self.runtime.seed)

        def epoch_batches(epoch: int):
            inputs, targets = inputs_all, targets_all
            if s.sequence_order == "shuffled":  # order-free: a fresh order of every user's items each epoch
                shuffled, _ = _training_windows(histories, users, n_items, s, gen)
                inputs, targets = torch.from_numpy(shuffled[:, :-1]), torch.from_numpy(shuffled[:, 1:])
            order = gen.permutation(n_windows)
            for start in range(0, n_windows, t.batch_size):
                idx = torch.from_numpy(order[start:start + t.batch_size])
                yield *trim_left_padding(inputs[idx], targets[idx], n_items), segments_all[idx]

        def loss(inputs: torch.Tensor, targets: torch.Tensor, segs: torch.Tensor) -> tuple[torch.Tensor, int]:
            return self._loss(inputs, targets, segs, sample_gen)

        step, epoch_batches = data_parallel(net, loss, epoch_batches, device)

        lm_modules = [self.encoder] if self.encoder is not None else []
        groups = param_groups(lm_modules, [net], t)
        optimizer = build_optimizer(groups, t, device)
        scheduler = warmup_schedule(optimizer, steps_per_epoch * t.max_epochs, t)
        if validate is None:
            from hyperrec.modeling.validation import default_validator

            validate = default_validator(data, metric=t.validation_metric, seed=self.runtime.seed)
        trainer = Trainer(t, self.runtime, validate=validate, on_metrics=on_metrics, name=self.name)
        modules = nn.ModuleList([net] + lm_modules)
        start = time.perf_counter()
        self.train_result = trainer.fit(
            modules, optimizer, recommender=self, epoch_batches=epoch_batches, step=step, device=device,
            steps_per_epoch=steps_per_epoch, encoders=lm_modules, scheduler=scheduler,
            invalidate=self._refresh_text_table,
        )
        self._token_cache = None  # the refreshed table holds what scoring needs; free the token states
        log.info("%s trained in %.1fs (%.0f examples/s), best val %s", self.name, time.perf_counter() - start,
                 self.train_result.examples_per_second, self.train_result.best_metric)
        if net.text_dim:
            self._refresh_text_table()  # the slot's vectors are the text table that scoring and save() use
            self.cold_slot = fit_cold_slot(self, data, np.flatnonzero(net.text_only.cpu().numpy()), s.cold_slot,
                                           seed=self.runtime.seed, vectors=text_vectors(net.text_table.cpu().numpy()))

    def _unseen_items(self, histories: dict[str, np.ndarray], n_items: int, net: NextItemNet,
                      device: torch.device) -> torch.Tensor | None:
        """Items with no train event; with unseen_items_from_text they are the net's text-only items."""
        if not self.settings.unseen_items_from_text:
            return None
        seen = np.zeros(n_items, dtype=bool)
        for history in histories.values():
            seen[history[(history >= 0) & (history < n_items)]] = True
        unseen = torch.from_numpy(~seen).to(device)
        net.text_only.copy_(unseen)
        log.info("%s: %d items have no train event; they are scored from their text", self.name, int(unseen.sum()))
        return unseen

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor, segs: torch.Tensor,
              gen: torch.Generator) -> tuple[torch.Tensor, int]:
        net, s = self.net, self.settings
        assert net is not None
        pad = net.pad
        valid_in = inputs != pad
        valid_out = targets != pad
        tgt = targets[valid_out]
        if s.loss == "full_softmax":
            text_only = net.text_only_mask(generator=gen)
            text = None
            if self._token_cache is not None and self._token_cache.trains():
                self._texts_stale = True
                text = live_text_table(self._token_cache, net.text_table, tgt, s.live_items_per_step, gen)
            all_vecs = net.item_vectors(text=text, text_only=text_only)
            padded_vecs = torch.cat([all_vecs, all_vecs.new_zeros(1, all_vecs.shape[1])])
            hidden, _ = net.hidden(padded_vecs[inputs], valid_in, segs if net.segment_emb is not None else None)
            bias = net.biases(text_only=text_only)
            if self._unseen is not None:  # never classes: masked in the bias, one pass less over the logits
                bias = bias.masked_fill(self._unseen, float("-inf"))
            logits = torch.addmm(bias, hidden[valid_out], all_vecs.T)
            if net.repeat_bias is not None:
                rows, positions = _history_pairs(inputs, valid_in, valid_out)
                logits = _add_repeat_bias(logits, rows, inputs.reshape(-1)[positions], net.repeat_bias)
            return F.cross_entropy(logits.float(), tgt), int(tgt.numel())
        # sampled softmax: candidates = batch targets + shared uniform negatives; accidental hits masked
        negatives = torch.randint(0, net.n_items, (s.n_sampled_negatives,), generator=gen).to(inputs.device)
        uniq, inverse = torch.unique(torch.cat([inputs[valid_in], tgt, negatives]), return_inverse=True)
        text = None
        if self._token_cache is not None and self._token_cache.trains():
            self._texts_stale = True
            text = self._token_cache.encode(uniq).to(inputs.device)
        elif self.encoder is not None and any(p.requires_grad for p in self.encoder.parameters()):
            # the encoder trains: embed this batch's items live (frozen: the cached text_table is used)
            assert self._tokens is not None
            self._texts_stale = True
            tok = {k: v[uniq.cpu()].to(inputs.device) for k, v in self._tokens.items()}
            width = int(tok["attention_mask"].sum(1).max())
            text = self.encoder(**{k: v[:, :width] for k, v in tok.items()})
        text_only = net.text_only_mask(uniq, generator=gen)
        vecs = net.item_vectors(uniq, text, text_only=text_only)
        n_in = int(valid_in.sum())
        seq_pos = torch.full_like(inputs, len(uniq))
        seq_pos[valid_in] = inverse[:n_in]
        seq_vecs = torch.cat([vecs, vecs.new_zeros(1, vecs.shape[1])])[seq_pos]
        hidden, _ = net.hidden(seq_vecs, valid_in, segs if net.segment_emb is not None else None)
        tgt_pos = inverse[n_in:n_in + tgt.numel()]
        cand = torch.unique(torch.cat([tgt_pos, inverse[n_in + tgt.numel():]]))
        logits = hidden[valid_out] @ vecs[cand].T + net.biases(uniq[cand], text_only=text_only[cand])
        if net.repeat_bias is not None:
            column_of = torch.full((len(uniq) + 1,), -1, dtype=torch.long, device=inputs.device)
            column_of[cand] = torch.arange(len(cand), device=inputs.device)
            rows, positions = _history_pairs(inputs, valid_in, valid_out)
            logits = _add_repeat_bias(logits, rows, column_of[seq_pos.reshape(-1)[positions]], net.repeat_bias)
        if self._unseen is not None:
            logits = logits.masked_fill(self._unseen[uniq[cand]], float("-inf"))
        label = torch.searchsorted(cand, tgt_pos)
        return F.cross_entropy(logits.float(), label), int(tgt.numel())

    @torch.no_grad()
    def _refresh_text_table(self) -> None:
        """After steps that trained the item encoder, re-embed the catalogue for scoring."""
        if self._token_cache is not None and self._texts_stale and self.net is not None:
            self.net.text_table.copy_(self._token_cache.encode_all().to(self.net.text_table.device))
            self._texts_stale = False
            return
        if self.encoder is None or not self._texts_stale or self.net is None or self._tokens is None:
            return
        was_training = self.encoder.training
        self.encoder.eval()
        out = []
        for start in range(0, self._tokens["input_ids"].shape[0], self.item_encoder_settings.batch_size):
            tok = {k: v[start:start + self.item_encoder_settings.batch_size].to(self._device)
                   for k, v in self._tokens.items()}
            width = int(tok["attention_mask"].sum(1).max())
            out.append(self.encoder(**{k: v[:, :width] for k, v in tok.items()}).float())
        self.net.text_table.copy_(torch.cat(out))
        self.encoder.train(was_training)
        self._texts_stale = False

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
        net = self._require()
        histories = [np.asarray(h, dtype=np.int64) for h in batch.histories]
        histories = [h[(h >= 0) & (h < net.n_items)] for h in histories]
        # Every history item is read (the penalty covers all of them); the transformer keeps the last max_len.
        history = torch.from_numpy(encode_histories(histories, max(1, *(len(h) for h in histories)))).to(self._device)
        segment = torch.from_numpy(encode_segments([self.segments.get(u) for u in batch.user_ids])).to(self._device)
        graph = self.scoring_graph()
        was_training = net.training
        net.eval()
        try:
            scores = graph(history, segment)
        finally:
            net.train(was_training)
        scores = scores.float().cpu().numpy().astype(np.float32, copy=False)
        return scores if self.cold_slot is None else reserve_cold_slot(scores, self.cold_slot, histories=histories)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        """(n_items, d_model) item vectors of the model's output space (used by explanations)."""
        net = self._require()
        self._refresh_text_table()
        return net.item_vectors().float().cpu().numpy()

    @torch.no_grad()
    def last_attention(self, history: np.ndarray, user_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(items actually read, attention of the last position over them, averaged over heads)."""
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
            "settings": self.settings.model_dump(mode="json"),
            "item_encoder": self.item_encoder_settings.model_dump(mode="json"),
            "runtime": self.runtime.model_dump(mode="json"),
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
        (directory / CONFIG_FILE).write_text(json.dumps(self._config_dict(), indent=1), encoding="utf-8")
        (directory / SEGMENTS_JSON).write_text(json.dumps(self.segments), encoding="utf-8")
        if self.encoder is not None:
            self.encoder.save_pretrained(directory / ENCODER_DIR)

    @classmethod
    def load(cls, directory: Path) -> NextItemRecommender:
        directory = Path(directory)
        try:
            config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"no saved next-item model in {directory}") from exc
        settings = NextItemSettings.model_validate(config["settings"])
        runtime = RuntimeSettings.model_validate(config["runtime"])
        if config.get("model") not in (NextItemRecommender.name, IDOnlyNextItemRecommender.name):
            raise ModelError(f"{directory} holds model {config.get('model')!r}, not a next-item model")
        target = IDOnlyNextItemRecommender if cls is NextItemRecommender and not settings.use_text else cls
        model = target(settings, item_encoder=ItemEncoderSettings.model_validate(config["item_encoder"]),
                    runtime=runtime)
        model.item_ids = list(config.get("item_ids") or [])
        model.exclude_history = bool(config.get("exclude_history", model.exclude_history))
        model.train_repeat_rate = config.get("train_repeat_rate")
        model.n_segments = int(config["n_segments"])
        model.segments = {str(k): int(v) for k, v in
                          json.loads((directory / SEGMENTS_JSON).read_text(encoding="utf-8")).items()}
        if config.get("train_result"):
            model.train_result = TrainResult.from_dict(config["train_result"])
        model._device = resolve_device(runtime.device)
        net = NextItemNet(int(config["n_items"]), config["text_dim"], settings, model.n_segments)
        state = load_state(directory / WEIGHTS_FILE)
        # Models saved before text-only scoring existed lack these two (all-False / zero is what they did).
        missing = {"text_only", "cold_bias"} - set(state)
        incompatible = net.load_state_dict(state, strict=not missing)
        if set(incompatible.missing_keys) - missing or incompatible.unexpected_keys:
            raise ModelError(f"{directory / WEIGHTS_FILE} does not fit the saved settings: {incompatible}")
        model.net = net.to(model._device).eval()
        model.cold_slot = saved_slot(config.get("cold_slot"), net.text_table.cpu().numpy() if net.text_dim else None)
        if (directory / ENCODER_DIR).exists():
            model.encoder = TextEncoder(directory / ENCODER_DIR, max_length=model.item_encoder_settings.max_length
                                        ).to(model._device).eval()
        return model



class IDOnlyNextItemRecommender(NextItemRecommender):
    """The ablation: the same model and budget with per-item ID embeddings only (no language model)."""

    name = "next_item_id"

    def __init__(self, settings: NextItemSettings | None = None, *, item_encoder: ItemEncoderSettings | None = None,
                 runtime: RuntimeSettings | None = None) -> None:
        settings = (settings or NextItemSettings()).model_copy(
            update={"use_text": False, "use_id_embedding": True, "finetune_item_encoder": False})
        super().__init__(settings, item_encoder=item_encoder, runtime=runtime)
