"""The simulator's world, built from real data: ml-latest-small users, their past and their future.

Each user's ratings are ordered by time; the latest ``future_fraction`` is held out. The history (the rest)
trains a cheap real ranker, item-kNN (``hyperrec.models.item_knn.cosine_neighbours``, the kNN baseline's
similarity) or popularity, and gives the user's segment (``hyperrec.data.segments``, as data prep does) and
history length. The held-out ratings at or above ``min_rating`` are the user's future positives: a shown
item the user will like. Candidates are the ranker's top N items outside the user's history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import load_movielens
from hyperrec.data.segments import segment_users, user_features
from hyperrec.models.item_knn import cosine_neighbours
from hyperrec.online.bandits.context import BanditContext, Candidates
from hyperrec.online.bandits.settings import SimulatorConfig

logger = logging.getLogger(__name__)

#: Fixed key: the simulator needs stable pseudonyms, not secret ones (it writes no user ids anywhere).
_SIMULATOR_KEY = b"hyperrec-bandit-simulator"


@dataclass(frozen=True)
class SimUser:
    """One simulated user: what the policy sees (candidates, context) and the truth (attraction)."""

    user: str
    candidates: Candidates
    context: BanditContext
    #: P(click | examined) of each candidate: attract_positive for future positives, else attract_noise.
    attraction: np.ndarray
    #: Whether each candidate is new (few history ratings): the new-item exposure metric.
    new_item: np.ndarray


@dataclass(frozen=True)
class SimulationData:
    users: tuple[SimUser, ...]
    ranker: str
    n_items: int
    #: Users whose future positives include at least one of their candidates.
    users_with_reachable_positive: int


def load_simulation_data(
    sim: SimulatorConfig, dataset_dir: Path, *, top_n: int, knn_neighbors: int = 50,
    segments_k: tuple[int, int] = (2, 8),
) -> SimulationData:
    """Read the MovieLens folder through hyperrec.data readers and build every simulated user (seconds)."""
    loaded = load_movielens(dataset_dir, Pseudonymizer(_SIMULATOR_KEY), Quarantine())
    items = loaded.items.reset_index(drop=True)
    item_idx = pd.Series(np.arange(len(items)), index=items["item_id"].astype(str))
    events = loaded.interactions.assign(item_idx=lambda f: f["item_id"].astype(str).map(item_idx))
    events = events.dropna(subset=["item_idx"]).astype({"item_idx": np.int64})
    history, future = _split_by_user(events, sim.future_fraction)
    keep = history.groupby("user_id").size()
    users = sorted(keep.index[keep >= sim.min_history])
    positives = future[future["value"] >= sim.min_rating].groupby("user_id")["item_idx"].agg(set)
    users = [u for u in users if u in positives.index]
    if sim.max_users is not None:
        users = users[: sim.max_users]
    if not users:
        raise ValueError(
            f"no user of {dataset_dir} has {sim.min_history} history ratings and a future positive"
        )
    n_items = len(items)
    matrix = _user_item_matrix(history, n_items)
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    scorer = _scorer(sim.ranker, matrix, popularity, knn_neighbors)
    segments = _segments(history, items, item_idx, segments_k, sim.seed)
    rows = history.groupby("user_id")["item_idx"].agg(list)
    built = [
        _sim_user(u, np.array(rows[u], dtype=np.int64), positives[u], scorer, popularity, items, segments,
                  sim, top_n)
        for u in users
    ]
    reachable = sum(bool((u.attraction >= sim.attract_positive).any()) for u in built)
    logger.info("simulator: %d users (%d with a positive among their %d candidates), ranker %s",
                len(built), reachable, top_n, sim.ranker)
    return SimulationData(tuple(built), sim.ranker, n_items, reachable)


def _split_by_user(events: pd.DataFrame, future_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's latest ``future_fraction`` of events (by time, file order breaking ties) is the future."""
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    position = ordered.groupby("user_id").cumcount()
    size = ordered.groupby("user_id")["item_idx"].transform("size")
    is_future = position >= np.floor(size * (1.0 - future_fraction))
    return ordered[~is_future], ordered[is_future]


def _user_item_matrix(history: pd.DataFrame, n_items: int) -> sp.csr_matrix:
    codes = history["user_id"].astype("category").cat.codes.to_numpy()
    data = np.ones(len(history), dtype=np.float32)
    matrix = sp.csr_matrix((data, (codes, history["item_idx"].to_numpy())), shape=(codes.max() + 1, n_items))
    matrix.data[:] = 1.0  # a repeated rating counts once
    return matrix


def _scorer(ranker: str, matrix: sp.csr_matrix, popularity: np.ndarray, neighbours: int):
    """history item indices -> scores over the catalogue; popularity breaks kNN ties."""
    tie_break = 1e-6 * popularity / max(popularity.max(), 1.0)
    if ranker == "popularity":
        return lambda history: popularity.astype(np.float64)
    similarity = cosine_neighbours(matrix, neighbours)

    def score(history: np.ndarray) -> np.ndarray:
        row = np.zeros(matrix.shape[1], dtype=np.float32)
        row[history] = 1.0
        return np.asarray(similarity.T @ row, dtype=np.float64) + tie_break

    return score


def _segments(
    history: pd.DataFrame, items: pd.DataFrame, item_idx: pd.Series, k_range: tuple[int, int], seed: int
) -> dict[str, int]:
    """Segments from history features only, exactly as data prep computes them from training events."""
    events = history.assign(label=history["value"] >= 4.0)
    catalogue = pd.DataFrame({"item_idx": item_idx.to_numpy(), "categories": items["categories"].to_numpy()})
    result = segment_users(user_features(events, catalogue), k_range[0], k_range[1], seed)
    return dict(zip(result.assignments["user_id"], result.assignments["segment"].astype(int)))


def _sim_user(
    user: str, history: np.ndarray, future: set[int], scorer, popularity: np.ndarray, items: pd.DataFrame,
    segments: dict[str, int], sim: SimulatorConfig, top_n: int,
) -> SimUser:
    scores = scorer(history)
    scores[history] = -np.inf
    top = np.argsort(-scores, kind="stable")[:top_n]
    candidates = Candidates(tuple(items["item_id"].astype(str).iloc[top]), scores[top], popularity[top])
    attraction = np.where(np.isin(top, list(future)), sim.attract_positive, sim.attract_noise)
    return SimUser(
        user=user, candidates=candidates,
        context=BanditContext(segments.get(user), int(np.unique(history).size), user),
        attraction=attraction, new_item=popularity[top] <= sim.new_item_max_events,
    )
