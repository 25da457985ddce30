"""The scoring graph of a fitted next-item model, over the tokens of ``hyperrec.features``.

Offline evaluation (``NextItemRecommender.score``) and serving (this module exported to ONNX and run by Triton
or the embedded predictor) execute this same module on the same ``encode_histories``/``encode_segments``
tokens, so a model cannot score differently in the two places.
"""

from __future__ import annotations

import torch
from torch import nn

from hyperrec.modeling.history import EXCLUDE_OFFSET


class NextItemGraph(nn.Module):
    """(history tokens [B, S], segment tokens [B]) -> scores [B, n_items].

    History tokens are item_idx + 1 with 0 as left padding; segment tokens are segment + 1 with 0 unknown.
    The transformer reads the last ``max_seq_len`` items; the history penalty (a learned offset, or exclusion
    below every other item) applies to every item of the history.
    """

    def __init__(self, net: nn.Module, *, exclude_history: bool) -> None:
        super().__init__()
        self.net = net
        self.exclude_history = exclude_history

    def forward(self, history: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
        """Scores of the whole catalogue for each row of tokens.

        Args:
            history: [B, S] history tokens (``encode_histories``).
            segment: [B] segment tokens (``encode_segments``).

        Returns:
            [B, n_items] scores, the history penalty applied.
        """
        net = self.net
        n_items = net.n_items
        valid_all = history > 0
        # Item index of each token, with the model's own pad index (n_items) for padding.
        items_all = torch.where(valid_all, history - 1, torch.full_like(history, n_items)).clamp(max=n_items)
        items, valid = items_all[:, -net.max_len:], valid_all[:, -net.max_len:]
        all_vectors = net.item_vectors()
        padded = torch.cat([all_vectors, all_vectors.new_zeros(1, all_vectors.shape[1])])
        segments = None
        if net.segment_emb is not None:
            unknown = net.segment_emb.num_embeddings - 1
            segments = torch.where(segment > 0, segment - 1, torch.full_like(segment, unknown))
        hidden, _ = net.hidden(padded[items], valid, segments)
        scores = hidden[:, -1] @ all_vectors.T + net.biases()
        offset = None
        if net.repeat_bias is not None:
            offset = net.repeat_bias
        if self.exclude_history:
            offset = scores.new_tensor(EXCLUDE_OFFSET) if offset is None else offset + EXCLUDE_OFFSET
        if offset is not None:
            seen = torch.zeros(history.shape[0], n_items + 1, dtype=scores.dtype, device=scores.device)
            seen = seen.scatter(1, items_all, torch.ones_like(items_all, dtype=scores.dtype))[:, :n_items]
            scores = scores + seen * offset
        return scores
