"""Training batches of the next-item model that carry no dead padding.

Training windows are left-padded to ``max_seq_len + 1`` items. On MovieLens most users have long histories
and the batches are full anyway, but on sparse data (the Debian package relations: median 2 train items per
user) nearly every column of a batch is padding, and the transformer's cost grows with the square of the
width. Positions are aligned to the right end of the window (``NextItemNet.hidden``) and padded positions
are never attended to, so dropping the columns that are padding in every row, in the inputs *and* the
targets, leaves every prediction and the loss unchanged while the cost follows the longest window of the
batch.
"""

from __future__ import annotations

import torch


def trim_left_padding(
    inputs: torch.Tensor, targets: torch.Tensor, pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``inputs`` and ``targets`` (B, L) without the leading columns that are ``pad`` in both, for all rows.

    A target column stays while any row still has a target there, even if its input is padding: the first
    item of a window is predicted from an empty prefix, and that prediction is kept.

    Args:
        inputs: (B, L) input tokens.
        targets: (B, L) target tokens.
        pad: the padding token.

    Returns:
        ``(inputs, targets)`` trimmed; unchanged when every column is padding.
    """
    used = ((inputs != pad) | (targets != pad)).any(dim=0)
    if not bool(used.any()):
        return inputs, targets
    first = int(torch.nonzero(used)[0])
    return inputs[:, first:], targets[:, first:]
