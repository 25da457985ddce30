"""Contrastive alignment of the next-item model's text projection with its ID embeddings (issue 9).

The item vector is ``text_proj(text) + id_emb``. Trained on next-item prediction alone, the ID embedding of a
popular item learns the collaborative signal and the text projection only what the sum still lacks. The
alignment term is an in-batch InfoNCE between the two views of the same items: each item's projected text
must pick its own ID embedding among those of up to ``max_items`` of the batch's target items (and each ID
embedding its own text), at ``temperature``, on unit vectors. The text projection then learns to place items
where the collaborative signal puts them, which carries over to items with few events; the ID embeddings of
rare items are pulled toward what their text says. Under torchrun every process aligns the items of the
whole global batch, so the averaged gradient is one process's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hyperrec.modeling.distributed import all_values
from hyperrec.modeling.next_item_net import NextItemNet


def text_id_alignment_loss(net: NextItemNet, targets: torch.Tensor, generator: torch.Generator, *,
                           max_items: int, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between projected text and ID embeddings of the batch's distinct target items.

    Args:
        net: a next-item net with both a text projection and ID embeddings.
        targets: (B, L) the batch's target items, ``net.pad`` where padded.
        generator: the step's seeded generator (draws the items when there are more than ``max_items``).
        max_items: most items in the contrast (the cost is quadratic in it).
        temperature: divides the cosine similarities.

    Returns:
        The scalar loss; zero (with no gradient) when fewer than two items qualify.
    """
    items = torch.unique(all_values(targets[targets != net.pad]))  # the global batch's, under torchrun
    items = items[~net.text_only[items]]  # items scored from text alone have no ID embedding to align with
    if items.numel() > max_items:
        items = items[torch.randperm(items.numel(), generator=generator)[:max_items].to(items.device)]
    if items.numel() < 2:
        return net.text_table.new_zeros(())
    assert net.id_emb is not None and net.text_dim is not None
    text = F.normalize(net.text_proj(net.text_table[items]), dim=-1)
    ids = F.normalize(net.id_emb(items), dim=-1)
    logits = text @ ids.T / temperature
    labels = torch.arange(items.numel(), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
