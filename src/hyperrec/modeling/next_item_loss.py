"""Training losses of the next-item model: every position of every window predicts the next item.

``full_softmax_loss``: cross-entropy over the whole catalogue (one matrix product with every item vector).
``sampled_softmax_loss``: cross-entropy over the batch's targets plus shared uniform negatives (accidental
hits masked), for catalogues too big for a full softmax or an encoder that trains end to end. The batch's
targets follow popularity, so a popular item is a negative far more often than a full softmax would make it;
with ``target_share`` each candidate's logit is corrected by the log of its chance of being a candidate
(the "logQ correction" of sampled softmax), so the scores estimate the full softmax's. Both add the
learned repeat bias to items the prediction has already seen, and never predict items without a train event
when those are scored from their text alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hyperrec.modeling.next_item_net import NextItemNet
from hyperrec.modeling.next_item_text import ItemText


def history_pairs(inputs: torch.Tensor, valid_in: torch.Tensor, valid_out: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) pairs: row = index of a predicted position in ``hidden[valid_out]`` order, position =
    a flat index into ``inputs`` of an item at or before it (what that prediction has already seen).

    Args:
        inputs: (B, L) item tokens of the windows.
        valid_in: (B, L) which inputs are items (not padding).
        valid_out: (B, L) which positions are predicted.

    Returns:
        (rows, positions), two 1-D long tensors of equal length.
    """
    batch, length = inputs.shape
    row_id = torch.full((batch, length), -1, dtype=torch.long, device=inputs.device)
    row_id[valid_out] = torch.arange(int(valid_out.sum()), device=inputs.device)
    t_idx, s_idx = torch.tril_indices(length, length, device=inputs.device)  # s <= t
    rows = row_id[:, t_idx]
    ok = (rows >= 0) & valid_in[:, s_idx]
    positions = (torch.arange(batch, device=inputs.device).unsqueeze(1) * length + s_idx.unsqueeze(0))
    return rows[ok], positions[ok]


def add_repeat_bias(logits: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, bias: torch.Tensor
                    ) -> torch.Tensor:
    """logits[rows, cols] += bias once per distinct (row, col) pair (in place; differentiable in bias)."""
    keep = cols >= 0
    flat = torch.unique(rows[keep] * logits.shape[1] + cols[keep])
    return logits.index_put_((flat // logits.shape[1], flat % logits.shape[1]), bias.expand(len(flat)),
                             accumulate=True)


def full_softmax_loss(net: NextItemNet, text: ItemText, inputs: torch.Tensor, targets: torch.Tensor,
                      segs: torch.Tensor, gen: torch.Generator, *, n_live: int, unseen: torch.Tensor | None
                      ) -> tuple[torch.Tensor, int]:
    """Cross-entropy of every predicted position of a batch against every catalogue item.

    Args:
        net: the network being trained.
        text: the item-text state; while the item encoder trains, ``n_live`` of the batch's targets get live
            text vectors.
        inputs, targets: (B, L) item indices, ``net.pad`` where padded; targets are the inputs shifted by one.
        segs: (B,) segment indices (read only when the net has a segment embedding).
        gen: the seeded generator of ID dropout and of the live items.
        n_live: most targets with live text vectors per step.
        unseen: (n_items,) items that are never a class (no train event), or None.

    Returns:
        The mean loss and the number of predicted positions.
    """
    valid_in, valid_out = inputs != net.pad, targets != net.pad
    tgt = targets[valid_out]
    text_only = net.text_only_mask(generator=gen)
    all_vecs = net.item_vectors(text=text.live_table(net, tgt, n_live, gen), text_only=text_only)
    padded_vecs = torch.cat([all_vecs, all_vecs.new_zeros(1, all_vecs.shape[1])])
    hidden, _ = net.hidden(padded_vecs[inputs], valid_in, segs if net.segment_emb is not None else None)
    bias = net.biases(text_only=text_only)
    if unseen is not None:  # never classes: masked in the bias, one pass less over the logits
        bias = bias.masked_fill(unseen, float("-inf"))
    logits = torch.addmm(bias, hidden[valid_out], all_vecs.T)
    if net.repeat_bias is not None:
        rows, positions = history_pairs(inputs, valid_in, valid_out)
        logits = add_repeat_bias(logits, rows, inputs.reshape(-1)[positions], net.repeat_bias)
    return F.cross_entropy(logits.float(), tgt), int(tgt.numel())


def sampled_softmax_loss(net: NextItemNet, text: ItemText, inputs: torch.Tensor, targets: torch.Tensor,
                         segs: torch.Tensor, gen: torch.Generator, *, n_negatives: int,
                         unseen: torch.Tensor | None, target_share: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, int]:
    """Cross-entropy of every predicted position of a batch against the batch's candidates.

    Only the vectors of the batch's items are computed (live ones while the item encoder trains), so the cost
    does not grow with the catalogue.

    Args:
        net, text, inputs, targets, segs, unseen: as in ``full_softmax_loss``.
        gen: the seeded generator of the negatives and of ID dropout.
        n_negatives: uniform negatives shared by the batch, added to the batch's items as candidates.
        target_share: (n_items,) each item's share of the train targets; given, the logits get the logQ
            correction (``candidate_log_q``).

    Returns:
        The mean loss and the number of predicted positions.
    """
    valid_in, valid_out = inputs != net.pad, targets != net.pad
    tgt = targets[valid_out]
    negatives = torch.randint(0, net.n_items, (n_negatives,), generator=gen).to(inputs.device)
    uniq, inverse = torch.unique(torch.cat([inputs[valid_in], tgt, negatives]), return_inverse=True)
    live = text.live_vectors(uniq, inputs.device)
    text_only = net.text_only_mask(uniq, generator=gen)
    vecs = net.item_vectors(uniq, live, text_only=text_only)
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
        rows, positions = history_pairs(inputs, valid_in, valid_out)
        logits = add_repeat_bias(logits, rows, column_of[seq_pos.reshape(-1)[positions]], net.repeat_bias)
    if target_share is not None:
        logits = logits - candidate_log_q(target_share[uniq[cand]], n_targets=int(tgt.numel()),
                                          n_negatives=n_negatives, n_items=net.n_items)
    if unseen is not None:
        logits = logits.masked_fill(unseen[uniq[cand]], float("-inf"))
    label = torch.searchsorted(cand, tgt_pos)
    return F.cross_entropy(logits.float(), label), int(tgt.numel())


def candidate_log_q(share: torch.Tensor, *, n_targets: int, n_negatives: int, n_items: int) -> torch.Tensor:
    """Log of the chance that each item is among a batch's candidates: one of ``n_targets`` targets drawn by
    their train shares ``share``, or one of ``n_negatives`` uniform draws over ``n_items``.

    Args:
        share: the candidates' shares of the train targets (0 for an item never a target).
        n_targets: targets in the batch.
        n_negatives: uniform negatives in the batch.
        n_items: catalogue size.

    Returns:
        log P(item is a candidate), one per entry of ``share``.
    """
    log_missed = n_targets * torch.log1p(-share.clamp(max=1 - 1e-7).double()) + n_negatives * math.log1p(
        -1.0 / n_items)
    return torch.log(-torch.expm1(log_missed)).to(share.dtype)
