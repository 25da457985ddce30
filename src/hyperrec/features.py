"""Model inputs built from a user's history: the ONE code path shared by training and serving.

A skew between how training and serving turn a history into tensors silently ruins a model, so both import
these functions; serving never re-implements them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Token 0 pads a history; item index i is fed to models as i + 1.
PAD = 0
#: Segment 0 means "unknown segment" (a new user); segment s is fed as s + 1.
UNKNOWN_SEGMENT = 0


def encode_histories(histories: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """Left-pad the last ``max_len`` item indices of each history into an int64 matrix of item tokens.

    Left padding keeps the most recent item in the last column, where causal sequence models read the
    user state from.

    Args:
        histories: item indices per user, oldest first.
        max_len: the number of columns, > 0 (longer histories keep their most recent items).

    Returns:
        (len(histories), max_len) int64 tokens: item index + 1, ``PAD`` on the left.
    """
    if max_len <= 0:
        raise ValueError("max_len must be positive")
    batch = np.full((len(histories), max_len), PAD, dtype=np.int64)
    for row, history in enumerate(histories):
        recent = np.asarray(history, dtype=np.int64)[-max_len:]
        if recent.size:
            batch[row, max_len - recent.size:] = recent + 1
    return batch


def encode_segments(segments: Sequence[int | None]) -> np.ndarray:
    """Segment ids as model tokens (``None`` → UNKNOWN_SEGMENT)."""
    return np.array([UNKNOWN_SEGMENT if s is None else int(s) + 1 for s in segments], dtype=np.int64)
