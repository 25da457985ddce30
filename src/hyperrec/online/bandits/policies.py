"""The policies: each orders the ranker's top-N for one request and says how likely its slate was.

Item value for epsilon-greedy, UCB1 and Thompson is a Beta posterior per item whose prior comes from the
ranker: an item at ranker rank j starts with ``prior_strength`` pseudo-impressions at the click rate learned
for rank j (itself shrunk to the global click rate); a user's own posterior starts from the item's
(``beta_posterior``). With no feedback all items tie and ties keep the
ranker's order, so every policy starts as the plain ranking and departs from it only on evidence.

Propensities (P(item shown at its position)) are exact for greedy, UCB1 and LinUCB (deterministic: 1), exact
for epsilon-greedy and the uniform reference, and Monte-Carlo estimates for Thompson sampling
(``propensity_samples`` draws of the whole slate procedure, the shown slate being one of them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from hyperrec.online.bandits.context import (
    BanditContext,
    Candidates,
    candidate_features,
    feature_dim,
    linucb_features,
)
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.slates import (
    capped_slates,
    epsilon_matrix,
    frequency_matrix,
    sample_uniform_capped,
    uniform_capped_matrix,
)
from hyperrec.online.bandits.state import Stat, StateSnapshot, StoreUnavailable

TOTAL_KEY = "total"
LINUCB_A, LINUCB_B = "linucb_A", "linucb_b"


def item_key(item_id: str) -> str:
    return f"item:{item_id}"


def rank_key(rank: int) -> str:
    return f"rank:{rank}"


def user_item_key(user: str, item_id: str) -> str:
    return f"user:{user}:{item_id}"


@dataclass(frozen=True)
class SlateRequest:
    """One decision: candidates in ranker order, the user context, slots, and the outsider cap."""

    candidates: Candidates
    context: BanditContext
    k: int
    cap: int

    @property
    def n(self) -> int:
        return len(self.candidates)


@dataclass(frozen=True)
class Choice:
    """Candidate indices shown (position 0 first) and P(that candidate at that position)."""

    slate: np.ndarray
    propensities: np.ndarray
    #: deterministic | exact | monte_carlo
    method: str


class Policy(ABC):
    name: str
    arrays: tuple[str, ...] = ()

    def keys(self, candidates: Candidates, context: BanditContext) -> list[str]:
        """State keys the decision reads."""
        return [
            TOTAL_KEY,
            *(rank_key(j) for j in range(len(candidates))),
            *map(item_key, candidates.item_ids),
            *user_keys(candidates, context),
        ]

    @abstractmethod
    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        """The slate for one request (raises StoreUnavailable when the state does not fit the policy)."""


def _ordered(scores: np.ndarray) -> np.ndarray:
    """Best first along the last axis; ties keep the ranker's order (stable sort)."""
    return np.argsort(-scores, axis=-1, kind="stable")


def _deterministic(order: np.ndarray, request: SlateRequest) -> Choice:
    slate = capped_slates(order, request.k, request.cap)[0]
    return Choice(slate, np.ones(request.k), "deterministic")


def user_keys(candidates: Candidates, context: BanditContext) -> list[str]:
    """Keys of this user's own counts of the candidates (none for an anonymous request)."""
    if context.user is None:
        return []
    return [user_item_key(context.user, item) for item in candidates.item_ids]


def user_counts(
    candidates: Candidates, context: BanditContext, snapshot: StateSnapshot
) -> tuple[np.ndarray, ...]:
    """(impressions, rewards) of each candidate for this user; zeros when anonymous."""
    stats = [snapshot.stat(key) for key in user_keys(candidates, context)] or [Stat()] * len(candidates)
    return np.array([s.n for s in stats]), np.array([s.r for s in stats])


def request_features(request: SlateRequest, snapshot: StateSnapshot) -> np.ndarray:
    """candidate_features of the request, with this user's own counts of each candidate."""
    shown, rewards = user_counts(request.candidates, request.context, snapshot)
    return candidate_features(request.candidates, shown, rewards)


def beta_posterior(
    request: SlateRequest, snapshot: StateSnapshot, prior_strength: float, user_strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Beta(alpha, beta) per candidate, in two levels.

    Item level: the rank prior (``prior_strength`` pseudo-impressions at rank j's click rate) plus the item's
    counts over all users. User level (when the request names a user): ``user_strength`` pseudo-impressions
    at the item-level mean plus this user's own counts, so that an item a user was shown twice without a
    click gives way to the next candidates for that user only.
    """
    alpha, beta = _item_posterior(request.candidates, snapshot, prior_strength)
    if request.context.user is None:
        return alpha, beta
    mean = alpha / (alpha + beta)
    shown, rewarded = user_counts(request.candidates, request.context, snapshot)
    alpha = user_strength * mean + rewarded
    beta = user_strength * (1.0 - mean) + np.maximum(shown - rewarded, 0.0)
    return np.maximum(alpha, 1e-6), np.maximum(beta, 1e-6)


def _item_posterior(
    candidates: Candidates, snapshot: StateSnapshot, prior_strength: float
) -> tuple[np.ndarray, np.ndarray]:
    total = snapshot.stat(TOTAL_KEY)
    overall = (total.r + 1.0) / (total.n + 2.0)
    ranks = [snapshot.stat(rank_key(j)) for j in range(len(candidates))]
    items = [snapshot.stat(item_key(i)) for i in candidates.item_ids]
    rank_n, rank_r = np.array([s.n for s in ranks]), np.array([s.r for s in ranks])
    prior = (rank_r + prior_strength * overall) / (rank_n + prior_strength)
    item_n, item_r = np.array([s.n for s in items]), np.array([s.r for s in items])
    alpha = prior_strength * prior + item_r
    beta = prior_strength * (1.0 - prior) + np.maximum(item_n - item_r, 0.0)
    return np.maximum(alpha, 1e-6), np.maximum(beta, 1e-6)


class GreedyPolicy(Policy):
    """The plain ranking: the ranker's top k."""

    name = "greedy"

    def keys(self, candidates: Candidates, context: BanditContext) -> list[str]:
        return []

    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        return Choice(np.arange(request.k), np.ones(request.k), "deterministic")


class RandomPolicy(Policy):
    """Reference only (never served): a uniformly random slate of the top N, no budget."""

    name = "random"

    def keys(self, candidates: Candidates, context: BanditContext) -> list[str]:
        return []

    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        slate = sample_uniform_capped(request.n, request.k, request.k, rng)
        matrix = uniform_capped_matrix(request.n, request.k, request.k)
        return Choice(slate, matrix[slate, np.arange(request.k)], "exact")


class EpsilonGreedyPolicy(Policy):
    """The best slate by posterior mean; with chance epsilon a uniform slate within the budget instead."""

    name = "epsilon_greedy"

    def __init__(self, epsilon: float, prior_strength: float, user_strength: float) -> None:
        self.epsilon, self.prior_strength, self.user_strength = epsilon, prior_strength, user_strength

    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        alpha, beta = beta_posterior(request, snapshot, self.prior_strength, self.user_strength)
        exploit = capped_slates(_ordered(alpha / (alpha + beta)), request.k, request.cap)[0]
        explore = request.cap > 0 and rng.random() < self.epsilon
        slate = sample_uniform_capped(request.n, request.k, request.cap, rng) if explore else exploit
        epsilon = self.epsilon if request.cap > 0 else 0.0
        matrix = epsilon_matrix(exploit, request.n, request.k, epsilon, request.cap)
        return Choice(slate, matrix[slate, np.arange(request.k)], "exact")


class UCB1Policy(Policy):
    """Posterior mean + c * sqrt(2 ln(T + 1) / (n_i + 1)): n_i the item's impressions to this user and T the
    user's impressions of these candidates (for an anonymous request: the item's and all impressions)."""

    name = "ucb1"

    def __init__(self, c: float, prior_strength: float, user_strength: float) -> None:
        self.c, self.prior_strength, self.user_strength = c, prior_strength, user_strength

    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        alpha, beta = beta_posterior(request, snapshot, self.prior_strength, self.user_strength)
        if request.context.user is None:
            shown = np.array([snapshot.stat(item_key(i)).n for i in request.candidates.item_ids])
            total = snapshot.stat(TOTAL_KEY).n
        else:
            shown = user_counts(request.candidates, request.context, snapshot)[0]
            total = float(shown.sum())
        bonus = self.c * np.sqrt(2.0 * np.log(total + 1.0) / (shown + 1.0))
        return _deterministic(_ordered(alpha / (alpha + beta) + bonus), request)


class ThompsonPolicy(Policy):
    """Rank by one draw from each item's Beta posterior; propensities by Monte-Carlo over more draws."""

    name = "thompson"

    def __init__(self, prior_strength: float, user_strength: float, samples: int) -> None:
        self.prior_strength, self.user_strength, self.samples = prior_strength, user_strength, samples

    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        alpha, beta = beta_posterior(request, snapshot, self.prior_strength, self.user_strength)
        draws = rng.beta(alpha, beta, size=(self.samples, request.n))
        slates = capped_slates(_ordered(draws), request.k, request.cap)
        matrix = frequency_matrix(slates, request.n)
        return Choice(slates[0], matrix[slates[0], np.arange(request.k)], "monte_carlo")


class LinUCBPolicy(Policy):
    """One ridge regression of reward on (user context x candidate features), shared by all items, plus
    alpha times its confidence width (Li et al. 2010, with the arm's features in x)."""

    name = "linucb"
    arrays = (LINUCB_A, LINUCB_B)

    def __init__(self, alpha: float, ridge: float, segments: int, max_history: int) -> None:
        self.alpha, self.ridge = alpha, ridge
        self.segments, self.max_history = segments, max_history
        self.dim = feature_dim(segments)

    def keys(self, candidates: Candidates, context: BanditContext) -> list[str]:
        return user_keys(candidates, context)

    def choose(self, request: SlateRequest, snapshot: StateSnapshot, rng: np.random.Generator) -> Choice:
        design, target = self.model(snapshot)
        x = linucb_features(request.context, request_features(request, snapshot),
                            segments=self.segments, max_history=self.max_history)
        theta = np.linalg.solve(design, target)
        width = np.sqrt(np.maximum(np.einsum("ij,ji->i", x, np.linalg.solve(design, x.T)), 0.0))
        return _deterministic(_ordered(x @ theta + self.alpha * width), request)

    def model(self, snapshot: StateSnapshot) -> tuple[np.ndarray, np.ndarray]:
        """Ridge design matrix and target vector from the stored sums (zero sums before any feedback)."""
        design = snapshot.arrays.get(LINUCB_A, np.zeros(self.dim * self.dim))
        target = snapshot.arrays.get(LINUCB_B, np.zeros(self.dim))
        if design.size != self.dim * self.dim or target.size != self.dim:
            raise StoreUnavailable(
                f"stored LinUCB state has {target.size} features, the settings {self.dim} (bandit.segments "
                "changed?)"
            )
        return design.reshape(self.dim, self.dim) + self.ridge * np.eye(self.dim), target


def make_policy(name: str, settings: BanditConfig) -> Policy:
    """The policy called ``name`` with its settings (``random`` is the simulator's reference)."""
    builders = {
        "greedy": GreedyPolicy,
        "random": RandomPolicy,
        "epsilon_greedy": lambda: EpsilonGreedyPolicy(settings.epsilon, settings.prior_strength,
                                                      settings.user_prior_strength),
        "ucb1": lambda: UCB1Policy(settings.ucb_c, settings.prior_strength, settings.user_prior_strength),
        "thompson": lambda: ThompsonPolicy(settings.prior_strength, settings.user_prior_strength,
                                           settings.propensity_samples),
        "linucb": lambda: LinUCBPolicy(settings.linucb_alpha, settings.linucb_ridge, settings.segments,
                                       settings.max_history),
    }
    if name not in builders:
        raise ValueError(f"unknown bandit policy {name!r}; known: {sorted(builders)}")
    return builders[name]()
