"""The network of the next-item model: item vectors -> causal transformer -> hidden states.

Item vectors are the projected (frozen or live) text embedding of each item plus, optionally, a per-item ID
embedding; items without a train event are scored from their text alone. The same vectors are the input
tokens and the output classes (``hyperrec.modeling.next_item_loss``, ``hyperrec.modeling.next_item_graph``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hyperrec.modeling.finetune import load_state
from hyperrec.modeling.settings import NextItemSettings

log = logging.getLogger(__name__)


class CausalBlock(nn.Module):
    """Pre-LN transformer block with causal self-attention (attention weights available for explanations)."""

    def __init__(self, d_model: int, n_heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pre-LN attention then feed-forward, each added to ``x``.

        Args:
            x: (B, L, d) inputs.
            mask: (B, 1, L, L) boolean, True where a position may attend.
            need_weights: compute attention explicitly and return its weights (else the fused kernel).

        Returns:
            (B, L, d) outputs and the (B, heads, L, L) attention weights, or None.
        """
        batch, length, d = x.shape
        q, k, v = (
            self.qkv(self.ln1(x))
            .view(batch, length, 3, self.n_heads, d // self.n_heads)
            .permute(2, 0, 3, 1, 4)
        )
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

    def __init__(
        self, n_items: int, text_dim: int | None, settings: NextItemSettings, n_segments: int = 0
    ) -> None:
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
            CausalBlock(s.d_model, s.n_heads, s.ffn_multiplier * s.d_model, s.dropout)
            for _ in range(s.n_layers)
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
        ``text_only`` (default: ``text_only_mask(idx)``) marks items whose ID embedding is left out.

        Args:
            idx: item indices; None: every item.
            text: text embeddings of those items in place of ``text_table`` rows.
            text_only: which of those items leave out their ID embedding.

        Returns:
            (n, d_model) item vectors.
        """
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
        """seq_vectors (B, L, d) of a left-padded sequence, valid (B, L) -> hidden (B, L, d) [+ last
        attention].

        Args:
            seq_vectors: (B, L, d) item vectors of the sequence, L at most ``max_len``.
            valid: (B, L) which positions hold items.
            segments: (B,) segment indices, or None for no segment embedding.
            need_weights: also return the attention weights of the last block.

        Returns:
            (B, L, d) hidden states after the final LayerNorm, and the last block's (B, heads, L, L) attention
            weights or None.
        """
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


def warm_start_net(net: NextItemNet, weights_file: Path) -> None:
    """Copy every tensor of saved weights whose name and shape match ``net``'s; log what was reused."""
    state = load_state(weights_file)
    own = net.state_dict()
    reused = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(reused, strict=False)
    log.info("warm start from %s: %d of %d tensors reused", weights_file.parent, len(reused), len(own))


def mark_text_only_items(net: NextItemNet, histories: dict[str, np.ndarray],
                         device: torch.device) -> torch.Tensor:
    """Mark the items without a train event as text-only in ``net`` and return that mask.

    Args:
        net: the network whose ``text_only`` buffer is set.
        histories: each user's train item indices.
        device: where the mask lives.

    Returns:
        A bool tensor (n_items,): True for items no history contains.
    """
    seen = np.zeros(net.n_items, dtype=bool)
    for history in histories.values():
        seen[history[(history >= 0) & (history < net.n_items)]] = True
    unseen = torch.from_numpy(~seen).to(device)
    net.text_only.copy_(unseen)
    return unseen


def target_shares(histories: dict[str, np.ndarray], n_items: int, device: torch.device) -> torch.Tensor:
    """Each item's share of the train events (what sampled softmax's logQ correction needs).

    Args:
        histories: each user's train item indices.
        n_items: catalogue size.
        device: where the shares live.

    Returns:
        A float tensor (n_items,) summing to 1 (0 for items without a train event).
    """
    events = [history[(history >= 0) & (history < n_items)] for history in histories.values()]
    counts = np.bincount(np.concatenate(events) if events else np.empty(0, dtype=np.int64),
                         minlength=n_items).astype(np.float64)
    return torch.from_numpy(counts / max(counts.sum(), 1.0)).float().to(device)
