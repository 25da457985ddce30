"""Training examples: each train positive with sampled negatives the user never interacted with.

Sampling is vectorized rejection: draw every negative at once, then redraw only the cells that hit an item
the user touched (in any split or event type, so a held-out item is never trained as a negative) or repeat
another negative of the same row. The rare rows still invalid after a few rounds (users who touched most of
the catalogue) are drawn exactly from their allowed items.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from hyperrec.errors import DataError

_REJECTION_ROUNDS = 20


def build_examples(train: pd.DataFrame, touched: pd.DataFrame, n_items: int, negatives_per_positive: int,
                   sampling: Literal["uniform", "popularity"], seed: int) -> pd.DataFrame:
    """examples.parquet: user_id, item_idx (the positive), timestamp, negatives (list[int32]).

    ``touched``: user_id and item_idx of every item event of every user (never sampled as a negative).
    ``popularity`` draws negatives in proportion to their train count; ``uniform`` from the catalogue.

    Args:
        train: the train positives: user_id, item_idx, timestamp.
        touched: every item event of every user (user_id, item_idx); rows with item_idx < 0 are ignored.
        n_items: the catalogue size; negatives are drawn from [0, n_items).
        negatives_per_positive: the negatives drawn for each train row.
        sampling: how negatives are drawn, "uniform" or "popularity".
        seed: the seed of the random generator.

    Returns:
        One row per train row, in train order.
    """
    users = pd.Index(pd.unique(pd.concat([train["user_id"], touched["user_id"]])))
    user_codes = users.get_indexer(train["user_id"]).astype(np.int64)
    touched = touched[touched["item_idx"] >= 0]
    forbidden = np.unique(users.get_indexer(touched["user_id"]).astype(np.int64) * n_items
                          + touched["item_idx"].to_numpy(dtype=np.int64))
    weights = _weights(train["item_idx"].to_numpy(), n_items, sampling)
    rng = np.random.default_rng(seed)
    negatives = _sample(user_codes, forbidden, weights, n_items, negatives_per_positive, rng)
    return pd.DataFrame({
        "user_id": train["user_id"].to_numpy(),
        "item_idx": train["item_idx"].to_numpy(dtype=np.int32),
        "timestamp": train["timestamp"].to_numpy(dtype=np.int64),
        "negatives": list(negatives.astype(np.int32)),
    })


def _weights(train_items: np.ndarray, n_items: int, sampling: str) -> np.ndarray | None:
    """Sampling probabilities per item; None means uniform."""
    if sampling == "uniform":
        return None
    counts = np.bincount(train_items, minlength=n_items).astype(float)
    return counts / counts.sum()


def _draw(rng: np.random.Generator, n_items: int, weights: np.ndarray | None, size: int) -> np.ndarray:
    if weights is None:
        return rng.integers(0, n_items, size=size)
    return rng.choice(n_items, size=size, p=weights)


def _sample(user_codes: np.ndarray, forbidden: np.ndarray, weights: np.ndarray | None, n_items: int,
            per_row: int, rng: np.random.Generator) -> np.ndarray:
    samples = _draw(rng, n_items, weights, len(user_codes) * per_row).reshape(-1, per_row)
    for _ in range(_REJECTION_ROUNDS):
        invalid = _invalid(samples, user_codes, forbidden, n_items)
        if not invalid.any():
            return samples
        samples[invalid] = _draw(rng, n_items, weights, int(invalid.sum()))
    for row in np.nonzero(_invalid(samples, user_codes, forbidden, n_items).any(axis=1))[0]:
        samples[row] = _exact_row(int(user_codes[row]), forbidden, weights, n_items, per_row, rng)
    return samples


def _invalid(samples: np.ndarray, user_codes: np.ndarray, forbidden: np.ndarray, n_items: int) -> np.ndarray:
    """Cells that hit a touched item or repeat an earlier cell of the same row."""
    keys = user_codes[:, None] * n_items + samples
    position = np.clip(np.searchsorted(forbidden, keys), 0, max(len(forbidden) - 1, 0))
    hits = forbidden[position] == keys if len(forbidden) else np.zeros_like(samples, dtype=bool)
    return hits | _row_repeats(samples)


def _row_repeats(samples: np.ndarray) -> np.ndarray:
    order = np.argsort(samples, axis=1, kind="stable")
    ordered = np.take_along_axis(samples, order, axis=1)
    repeat = np.zeros_like(samples, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    result = np.zeros_like(samples, dtype=bool)
    np.put_along_axis(result, order, repeat, axis=1)
    return result


def _exact_row(user_code: int, forbidden: np.ndarray, weights: np.ndarray | None, n_items: int, per_row: int,
               rng: np.random.Generator) -> np.ndarray:
    """Draw from the user's allowed items directly (with repeats only if fewer remain than needed)."""
    own = forbidden[(forbidden >= user_code * n_items) & (forbidden < (user_code + 1) * n_items)] % n_items
    allowed = np.setdiff1d(np.arange(n_items), own)
    if len(allowed) == 0:
        raise DataError("a user interacted with every item of the catalogue; no negative can be sampled")
    probabilities = None
    if weights is not None and weights[allowed].sum() > 0:
        allowed = allowed[weights[allowed] > 0]
        probabilities = weights[allowed] / weights[allowed].sum()
    return rng.choice(allowed, size=per_row, replace=len(allowed) < per_row, p=probabilities)
