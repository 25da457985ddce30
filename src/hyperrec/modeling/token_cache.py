"""Fine-tune the top layers of the item encoder on CPU: the frozen lower layers run once per item.

A next-item model with a full softmax needs a text vector for every catalogue item at every step; running
all of MiniLM on 9,742 items per step is out of reach on two cores. The lower layers never train, so their
output token states are computed once (``TokenStateCache``, packed without padding) and only the top
``n_top`` layers, mean pooling and L2 norm run on the cached states. Each training step re-encodes, with
gradients, only a bounded set of the batch's target items (``live_text_table``); every other row of the text
table is the last refreshed, detached vector. Before each validation the whole table is refreshed from the
current weights (``encode_all``), so what is scored and saved is exactly the adapted encoder's output.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hyperrec.errors import ModelError
from hyperrec.modeling.item_encoder import TextEncoder

log = logging.getLogger(__name__)


def _bidirectional_mask(
    encoder: TextEncoder, states: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor | None:
    """The attention mask the model's own layers expect for ``mask`` (B, T) of 0/1 (transformers >= 5)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=encoder.model.config, inputs_embeds=states, attention_mask=mask)


class TokenStateCache:
    """Token states entering the top ``n_top`` layers of ``encoder`` for every text, computed once.

    ``states`` holds every text's real tokens back to back (no padding); ``offsets``/``lengths`` locate them.
    ``encode(idx)`` runs the top layers on the cached states of texts ``idx`` (with gradients when those
    layers train) and pools them like ``TextEncoder.forward``.
    """

    def __init__(
        self, encoder: TextEncoder, texts: Sequence[str], n_top: int, *, batch_size: int = 128
    ) -> None:
        layers = encoder.transformer_layers()
        if not 1 <= n_top <= len(layers):
            raise ModelError(f"token cache: n_top must be 1..{len(layers)} layers, got {n_top}")
        self.encoder, self.n_top = encoder, n_top
        self.top_layers = layers[len(layers) - n_top:]
        self.lengths, self.offsets, self.states = self._build(texts, len(layers) - n_top, batch_size)
        log.info("token cache: %d texts, %d token states of the bottom %d of %d layers (%.0f MB)", len(texts),
                 self.states.shape[0], len(layers) - n_top, len(layers), self.states.numel() * 4 / 2**20)

    @torch.no_grad()
    def _build(self, texts: Sequence[str], depth: int, batch_size: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        encoder = self.encoder
        was_training = encoder.training
        encoder.eval()
        tokens = encoder.tokenize(texts)
        lengths = tokens["attention_mask"].sum(1)
        order = np.argsort(-lengths.numpy(), kind="stable")
        per_text: list[torch.Tensor | None] = [None] * len(texts)
        try:
            for start in range(0, len(texts), batch_size):
                idx = torch.from_numpy(order[start:start + batch_size])
                width = int(lengths[idx].max())
                batch = {k: v[idx, :width].to(encoder.device) for k, v in tokens.items()}
                hidden = encoder.model(**batch, output_hidden_states=True).hidden_states[depth].float().cpu()
                for row, text_idx in enumerate(idx.tolist()):
                    per_text[text_idx] = hidden[row, :int(lengths[text_idx])]
        finally:
            encoder.train(was_training)
        offsets = torch.zeros(len(texts), dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)[:-1]
        return lengths, offsets, torch.cat([t for t in per_text if t is not None])

    def encode(self, idx: torch.Tensor) -> torch.Tensor:
        """(k,) text indices -> (k, dim) L2-normalized vectors from the top layers on the cached states.

        Args:
            idx: (k,) text indices.

        Returns:
            (k, dim) float32 vectors on the encoder's device, with gradients when the top layers train.
        """
        idx = idx.cpu()
        lengths = self.lengths[idx]
        width = int(lengths.max())
        steps = torch.arange(width)
        valid = steps.unsqueeze(0) < lengths.unsqueeze(1)
        positions = torch.where(valid, self.offsets[idx].unsqueeze(1) + steps, 0)
        device = self.encoder.device
        x = self.states[positions].to(device)
        mask = valid.to(device=device, dtype=torch.long)
        attention = _bidirectional_mask(self.encoder, x, mask)
        for layer in self.top_layers:
            out = layer(x, attention_mask=attention)
            x = out[0] if isinstance(out, tuple) else out
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled.float(), dim=-1)

    @torch.no_grad()
    def encode_all(self, batch_size: int = 256) -> torch.Tensor:
        """Every text's vector from the current top layers (eval mode, no gradients), in text order.

        Args:
            batch_size: texts per forward pass.

        Returns:
            (n_texts, dim) float32 vectors on the CPU.
        """
        was_training = self.encoder.training
        self.encoder.eval()
        order = torch.from_numpy(np.argsort(-self.lengths.numpy(), kind="stable"))
        out = torch.zeros(len(self.lengths), self.encoder.dim)
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                out[idx] = self.encode(idx).cpu()
        finally:
            self.encoder.train(was_training)
        return out

    def trains(self) -> bool:
        """Whether any cached-over layer currently takes gradients (the unfreeze schedule reached it)."""
        return any(p.requires_grad for layer in self.top_layers for p in layer.parameters())


def live_text_table(cache: TokenStateCache, table: torch.Tensor, targets: torch.Tensor, n_live: int,
                    generator: torch.Generator) -> torch.Tensor:
    """``table`` with the rows of up to ``n_live`` of the batch's distinct ``targets`` (a seeded draw)
    replaced by live vectors that carry gradients into the top layers; the rows are also written back,
    detached, into ``table`` so that the table tracks the encoder between full refreshes.

    Args:
        cache: the token states of the item texts.
        table: (n_items, dim) text table, updated in place.
        targets: the batch's target item indices.
        n_live: the most rows re-encoded.
        generator: draws the rows when there are more distinct targets.

    Returns:
        The table for this step: the live rows carry gradients, the others are detached.
    """
    items = torch.unique(targets.cpu())
    if len(items) > n_live:
        items = items[torch.randperm(len(items), generator=generator)[:n_live]].sort().values
    live = cache.encode(items).to(table.device)
    device_items = items.to(table.device)
    with torch.no_grad():
        table[device_items] = live.detach()
    return table.detach().index_put((device_items,), live)


def cached_encoder(encoder: TextEncoder, texts: Sequence[str], schedule: dict[int, int], *,
                   batch_size: int = 128) -> TokenStateCache:
    """The token cache for an unfreeze schedule: cached below the deepest layer it ever trains (-1 or more
    than the model has: below the first layer; the embeddings then stay frozen)."""
    n_layers = len(encoder.transformer_layers())
    deepest = max(schedule.values())
    if deepest == 0:
        raise ModelError("token cache: the unfreeze schedule never trains a layer; use the frozen encoder")
    n_top = n_layers if -1 in schedule.values() else min(deepest, n_layers)
    return TokenStateCache(encoder, texts, n_top, batch_size=batch_size)
