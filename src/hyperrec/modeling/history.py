"""Items already in a user's history: how often users repeat them, and pushing them down at scoring time.

In MovieLens every (user, movie) pair is rated once, and the reference protocol keeps the validation item (the
last history item at test time) as a candidate; a model that scores what the user just watched at the top
wastes a slot. ``history_penalty="auto"`` measures the train repeat rate and, when users (almost) never
repeat, scores history items below every other item (finite, so the order among them is kept).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Score offset of history items when they are excluded: below any real score, still finite.
EXCLUDE_OFFSET = -1.0e4
#: auto excludes history items when fewer train events than this repeat an earlier item of the same user.
AUTO_REPEAT_RATE = 0.01


def repeat_rate(histories: dict[str, np.ndarray]) -> float:
    """Share of events whose item already occurred earlier in the same user's sequence."""
    total = sum(len(h) for h in histories.values())
    repeats = sum(len(h) - len(np.unique(h)) for h in histories.values())
    return repeats / total if total else 0.0


def decide_exclusion(mode: str, histories: dict[str, np.ndarray]) -> bool:
    """exclude -> True, off/learned -> False, auto -> whether the repeat rate is under AUTO_REPEAT_RATE."""
    if mode == "auto":
        return repeat_rate(histories) < AUTO_REPEAT_RATE
    return mode == "exclude"


def exclude_history(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Add EXCLUDE_OFFSET to each row's history items (in place; returns ``scores``)."""
    n_items = scores.shape[1]
    for row, history in enumerate(histories):
        h = np.unique(np.asarray(history, dtype=np.int64))
        h = h[(h >= 0) & (h < n_items)]
        scores[row, h] += EXCLUDE_OFFSET
    return scores
