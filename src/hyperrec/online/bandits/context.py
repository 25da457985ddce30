"""What a policy sees of one request, and the ONE function turning it into LinUCB features.

The transformer (from its ``Plan`` and ranked scores) and the simulator (from its ranker) both build
``Candidates`` and ``BanditContext`` and both call ``linucb_features``; nothing else computes features, so
the state learned offline and online means the same thing (no train/serve skew).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Per-candidate features (each in [0, 1]) crossed with the user context. Score and rank fall with the
#: ranker's rank and the user's own counts (shown without a click, clicked) are 0 before any feedback, so with
#: no feedback LinUCB's widest bound is the ranker's first item and it shows the plain ranking (a popularity
#: feature would break that: it reorders the cold start by popularity).
CANDIDATE_FEATURES = ("bias", "score", "rank", "user_skipped", "user_clicked")
#: Count at which the user_skipped / user_clicked features saturate at 1.
USER_COUNT_CAP = 5.0


@dataclass(frozen=True)
class BanditContext:
    """The user side of a request: segment id (None: unknown), how many known history items it sent, and the
    user's pseudonym (None: anonymous; per-user state is then not read or written)."""

    segment: int | None
    history_length: int
    user: str | None = None


@dataclass(frozen=True)
class Candidates:
    """The ranker's top-N, best first: candidate index j is ranker rank j."""

    item_ids: tuple[str, ...]
    scores: np.ndarray
    popularity: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if len(set(self.item_ids)) != n:
            raise ValueError("candidate item ids must be distinct")
        if np.shape(self.scores) != (n,) or np.shape(self.popularity) != (n,):
            raise ValueError("candidate scores and popularity must have one value per item id")

    def __len__(self) -> int:
        return len(self.item_ids)

    def head(self, n: int) -> Candidates:
        """The first ``n`` candidates."""
        return Candidates(self.item_ids[:n], np.asarray(self.scores)[:n], np.asarray(self.popularity)[:n])


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.full(values.shape, 0.5)


def candidate_features(
    candidates: Candidates, user_shown: np.ndarray | None = None, user_rewards: np.ndarray | None = None
) -> np.ndarray:
    """[N, 5]: bias, min-max ranker score among the candidates, 1/log2(rank+2), and how often this user was
    already shown the item without a click and with one (each min(count, 5) / 5; None: unknown, 0).

    Score and rank are scale-free (the LM's logits or a kNN sum map to [0, 1]), so the same state serves a
    retrained ranker whose scores live on another scale.
    """
    n = len(candidates)
    scores = np.asarray(candidates.scores, dtype=np.float64)
    finite = np.isfinite(scores)
    scores = np.where(finite, scores, scores[finite].min() if finite.any() else 0.0)
    shown = np.zeros(n) if user_shown is None else np.asarray(user_shown, dtype=np.float64)
    rewards = np.zeros(n) if user_rewards is None else np.asarray(user_rewards, dtype=np.float64)
    skipped = np.minimum(np.maximum(shown - rewards, 0.0), USER_COUNT_CAP) / USER_COUNT_CAP
    clicked = np.minimum(rewards, USER_COUNT_CAP) / USER_COUNT_CAP
    return np.column_stack([np.ones(n), _minmax(scores), 1.0 / np.log2(np.arange(n) + 2.0), skipped, clicked])


def context_features(context: BanditContext, segments: int, max_history: int) -> np.ndarray:
    """[segments + 3]: bias, one-hot segment (slot 0: unknown or out of range), log-scaled history length."""
    vector = np.zeros(segments + 3)
    vector[0] = 1.0
    segment = context.segment
    slot = 1 + (segment + 1 if segment is not None and 0 <= segment < segments else 0)
    vector[slot] = 1.0
    vector[-1] = min(np.log1p(max(context.history_length, 0)) / np.log1p(max_history), 1.0)
    return vector


def crossed(user: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[N, len(user) * n_item_features]: every user feature times every candidate feature."""
    return (user[None, :, None] * items[:, None, :]).reshape(len(items), -1)


def linucb_features(
    context: BanditContext, item_features: np.ndarray, *, segments: int, max_history: int
) -> np.ndarray:
    """LinUCB's x for each candidate: the request's context crossed with the candidate's features."""
    return crossed(
        context_features(context, segments, max_history), np.asarray(item_features, dtype=np.float64)
    )


def feature_dim(segments: int) -> int:
    return (segments + 3) * len(CANDIDATE_FEATURES)
