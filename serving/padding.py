"""Left-padding trim for the embedded predictor: run the graph on the history columns that hold items.

The transformer pads every history to ``max_history`` tokens (Triton's config fixes the width so its batcher
can stack requests), yet a typical request carries a handful of items: with max_history 200 and 8 items the
predictor spent 5x the CPU per row on padding (issue 11 bench). The next-item graph masks padded keys out of
attention and aligns positions to the right, so the all-pad columns on the left do not change its scores.
That is a property of the model, not of the contract, so ``padding_is_inert`` checks it on the loaded graph
(bit-for-bit top ids, scores within 1e-5) before the predictor trims.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hyperrec.export.onnx_contract import HISTORY_INPUT, SCORES_OUTPUT, SEGMENT_INPUT, TOP_IDS_OUTPUT

logger = logging.getLogger(__name__)


def trim_left_padding(history: np.ndarray) -> np.ndarray:
    """``history`` without its leading columns that are padding (0) in every row; at least one column."""
    filled = np.flatnonzero(history.any(axis=0))
    start = int(filled[0]) if filled.size else history.shape[1] - 1
    return history[:, start:] if start else history


def padding_is_inert(session: Any, *, max_history: int, n_items: int, seed: int = 0) -> bool:
    """Whether the graph gives the same scores (and top ids, when it has them) with the padding trimmed."""
    rng = np.random.default_rng(seed)
    rows = 6
    history = np.zeros((rows, max_history), dtype=np.int64)
    for row in range(rows):
        length = 1 + row % max(1, max_history // 2)  # the longest row still leaves padding to trim
        history[row, max_history - length:] = rng.integers(1, n_items + 1, size=length)
    segment = np.arange(rows, dtype=np.int64) % 2
    names = [SCORES_OUTPUT] + (
        [TOP_IDS_OUTPUT] if TOP_IDS_OUTPUT in {o.name for o in session.get_outputs()} else []
    )
    trimmed_history = np.ascontiguousarray(trim_left_padding(history))
    try:
        full = session.run(names, {HISTORY_INPUT: history, SEGMENT_INPUT: segment})
        trimmed = session.run(names, {HISTORY_INPUT: trimmed_history, SEGMENT_INPUT: segment})
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own types: then do not trim
        logger.warning("padding probe failed (%s); the predictor runs the full history width", exc)
        return False
    same = np.allclose(full[0], trimmed[0], rtol=0, atol=1e-5) and all(
        np.array_equal(a, b) for a, b in zip(full[1:], trimmed[1:]))
    if not same:
        logger.info("this graph's scores depend on left padding; the predictor runs the full history width")
    return bool(same)
