"""Typed settings of the bandit re-ranker and its simulator, mounted as ``HyperrecConfig.bandit``.

This module must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from hyperrec.settings_base import Section as _Section

#: Policies a transformer may serve with; ``random`` exists only as the simulator's reference.
SERVING_POLICIES = ("greedy", "epsilon_greedy", "ucb1", "thompson", "linucb")
PolicyName = Literal["greedy", "epsilon_greedy", "ucb1", "thompson", "linucb"]


class SimulatorConfig(_Section):
    """The offline simulator: ml-latest-small users' future ratings decide clicks
    (``hyperrec bench bandits``)."""

    dataset_dir: Path | None = Field(
        None, description="MovieLens folder read with hyperrec.data readers; None: data.dataset_dir."
    )
    ranker: Literal["item_knn", "popularity"] = Field(
        "item_knn", description="Cheap real ranker producing the top-N candidates from each user's history."
    )
    future_fraction: float = Field(
        0.2, gt=0, lt=1, description="Each user's latest share of ratings is held out as their future."
    )
    min_rating: float = Field(4.0, description="A held-out rating at or above this is a future positive.")
    min_history: int = Field(5, ge=1, description="Users with fewer history ratings are left out.")
    max_users: int | None = Field(
        None, ge=2, description="Keep the first users (by pseudonym order); None: all."
    )
    steps: int = Field(3000, ge=1, description="Requests simulated per policy (one user drawn per request).")
    k: int = Field(5, ge=1, description="Slots shown per request.")
    attract_positive: float = Field(
        0.9, gt=0, le=1, description="P(click | examined, item is a future positive)."
    )
    attract_noise: float = Field(0.01, ge=0, lt=1, description="P(click | examined, any other item).")
    position_decay: Literal["dcg", "none"] = Field(
        "dcg", description="P(examined | position p): 1/log2(p+2) (dcg) or 1 (none)."
    )
    new_item_max_events: int = Field(
        5, ge=0, description="An item with at most this many history ratings counts as new for exposure."
    )
    feedback_batch: int = Field(10, ge=1, description="Requests whose feedback is applied together (delay).")
    seed: int = 7


class BanditConfig(_Section):
    """How the transformer re-ranks the LM's top-N candidates, and where the shared policy state lives."""

    enabled: bool = Field(False, description="Re-rank with the policy; False: the plain ranking.")
    policy: PolicyName = "epsilon_greedy"
    top_n: int = Field(20, ge=2, description="Candidates of the ranker the policy chooses among.")
    epsilon: float = Field(0.1, ge=0, le=1, description="epsilon_greedy: chance that a slot explores.")
    ucb_c: float = Field(0.2, ge=0, description="ucb1: weight of the sqrt(2 ln T / (n+1)) bonus.")
    linucb_alpha: float = Field(0.3, ge=0, description="linucb: weight of the confidence width.")
    linucb_ridge: float = Field(1.0, gt=0, description="linucb: ridge (identity) added to the design matrix.")
    segments: int = Field(8, ge=1, description="linucb: segment slots in the features (larger ids: unknown).")
    max_history: int = Field(500, ge=1, description="linucb: history length that maps to feature value 1.")
    prior_strength: float = Field(
        20.0, gt=0, description="Pseudo-impressions of the rank prior each item's Beta posterior starts from."
    )
    user_prior_strength: float = Field(
        2.0,
        gt=0,
        description="Pseudo-impressions of the item's value that each user's own posterior starts from.",
    )
    budget: float = Field(
        0.4, ge=0, le=1, description="Most share of the k slots that may hold items outside the plain top-k."
    )
    reward: Literal["click", "dwell"] = Field(
        "click", description="click: reward 1 per click; dwell: min(dwell / dwell_full_s, 1) for a click."
    )
    dwell_full_s: float = Field(60.0, gt=0, description="Dwell seconds that earn the full reward.")
    propensity_samples: int = Field(
        200, ge=10, description="thompson: Monte-Carlo draws estimating each shown item's propensity."
    )
    staleness_s: float | None = Field(
        3600.0, gt=0, description="State not updated for longer: plain ranking (degraded); None: never stale."
    )
    store_url: str = Field(
        "sqlite:///outputs/bandit/state.sqlite",
        description="sqlite:///path (embedded, atomic transactions) or redis://host:port/db (cluster).",
    )
    namespace: str = Field("hyperrec", min_length=1, description="Key prefix of this policy state.")
    store_timeout_s: float = Field(0.05, gt=0, description="Socket timeout of one Redis call.")
    unavailable_backoff_s: float = Field(
        1.0, ge=0, description="After a store failure, serve the plain ranking this long before retrying."
    )
    seed: int | None = Field(None, description="Seed of the policy's random draws; None: fresh entropy.")
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)

    @model_validator(mode="after")
    def _store_url(self) -> BanditConfig:
        if not self.store_url.startswith(("sqlite:///", "redis://", "rediss://")):
            raise ValueError("bandit.store_url must start with sqlite:///, redis:// or rediss://")
        return self
