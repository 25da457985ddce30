"""Slates under the exploration budget, and their position propensities P(candidate j shown at position p).

Candidates are indexed in ranker order, so the plain ranking's slate is ``0..k-1`` ("insiders"); every other
candidate is an "outsider". The exploration budget caps the outsiders a slate may hold at
``floor(budget * k)``: the policy's order is kept, and outsiders past the cap are skipped in favour of the
next insiders. Propensity matrices are [n_candidates, k]; each column sums to 1 (one item per position).
"""

from __future__ import annotations

from math import comb, floor

import numpy as np


def outsider_cap(k: int, budget: float, n: int) -> int:
    """Most outsiders one slate of ``k`` from ``n`` candidates may hold under the budget share."""
    return max(0, min(floor(budget * k + 1e-9), n - k, k))


def capped_slates(orders: np.ndarray, k: int, cap: int) -> np.ndarray:
    """[R, k] slates: per row of ``orders`` ([R, N] candidate indices, best first) the first k allowed items.

    An item is allowed when it is an insider or among the first ``cap`` outsiders of its row. Every row holds
    the k insiders, so every row yields exactly k items.
    """
    orders = np.atleast_2d(orders)
    inside = orders < k
    allowed = inside | (np.cumsum(~inside, axis=1) <= cap)
    taken = allowed & (np.cumsum(allowed, axis=1) <= k)
    return orders[taken].reshape(len(orders), k)


def frequency_matrix(slates: np.ndarray, n: int) -> np.ndarray:
    """[n, k] share of the sampled ``slates`` ([R, k]) that show candidate j at position p."""
    slates = np.atleast_2d(slates)
    rows, k = slates.shape
    counts = np.zeros((n, k))
    np.add.at(counts, (slates, np.broadcast_to(np.arange(k), slates.shape)), 1.0)
    return counts / rows


def deterministic_matrix(slate: np.ndarray, n: int) -> np.ndarray:
    """The one slate a deterministic policy shows: probability 1 at each (item, position) it holds."""
    return frequency_matrix(np.asarray(slate)[None, :], n)


def _outsider_count_weights(n: int, k: int, cap: int) -> np.ndarray:
    """Number of distinct ordered slates with o outsiders, o = 0..cap (up to the common factor k!)."""
    return np.array([comb(k, o) * comb(n - k, o) for o in range(cap + 1)], dtype=np.float64)


def uniform_capped_matrix(n: int, k: int, cap: int) -> np.ndarray:
    """Exact propensities of a slate drawn uniformly among all slates with at most ``cap`` outsiders.

    By symmetry every insider has the same chance at every position, and so does every outsider, so only
    the expected number of outsiders E[o] matters: P(insider at p) = (k - E[o]) / k², P(outsider at p) =
    E[o] / ((n - k) k). With ``cap = k`` this is the uniform random slate: 1/n everywhere.
    """
    weights = _outsider_count_weights(n, k, cap)
    expected = float(np.arange(cap + 1) @ weights / weights.sum())
    matrix = np.empty((n, k))
    matrix[:k] = (k - expected) / (k * k)
    if n > k:
        matrix[k:] = expected / ((n - k) * k)
    return matrix


def sample_uniform_capped(n: int, k: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """One slate drawn uniformly among slates with at most ``cap`` outsiders (see uniform_capped_matrix)."""
    weights = np.cumsum(_outsider_count_weights(n, k, cap))
    outsiders = min(int(np.searchsorted(weights, rng.random() * weights[-1], side="right")), cap)
    chosen = np.concatenate([rng.permutation(k)[: k - outsiders], k + rng.permutation(n - k)[:outsiders]])
    return rng.permutation(chosen.astype(np.int64))


def epsilon_matrix(exploit: np.ndarray, n: int, k: int, epsilon: float, cap: int) -> np.ndarray:
    """Exact propensities of epsilon-greedy over slates: the exploit slate, or with chance epsilon a uniform
    capped one. Every (item, position) pair keeps a positive chance when epsilon > 0 and cap >= 1, which is
    what position-wise off-policy estimates need."""
    return (1.0 - epsilon) * deterministic_matrix(exploit, n) + epsilon * uniform_capped_matrix(n, k, cap)
