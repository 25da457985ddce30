"""Replay requests of real users through a policy; their held-out future decides the clicks.

Click model (position-based): a shown item at position p (0 = top) is examined with probability
``exam(p) = 1 / log2(p + 2)`` (``position_decay: dcg``; 1 with ``none``) and, when examined, clicked with
probability ``attract_positive`` if it is one of the user's future positives and ``attract_noise``
otherwise. Each step draws one user uniformly (the same sequence for every policy), the policy shows k of
the user's top-N candidates, clicks are drawn, and every ``feedback_batch`` steps the impressions are fed
back through ``BanditReranker.update`` (a delayed feedback loop, as in serving).

Regret of a request = expected clicks of the best slate (future positives first, in the best positions)
minus expected clicks of the shown one, both under the true click model, so it carries no click-draw noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hyperrec.online.bandits.feedback import Impression
from hyperrec.online.bandits.ope import LoggedItem, LoggedRequest
from hyperrec.online.bandits.policies import make_policy
from hyperrec.online.bandits.reranker import BanditReranker
from hyperrec.online.bandits.settings import BanditConfig, SimulatorConfig
from hyperrec.online.bandits.simdata import SimulationData, SimUser
from hyperrec.online.bandits.state import MemoryStore


def examination(k: int, decay: str) -> np.ndarray:
    """P(examined) of positions 0..k-1."""
    return 1.0 / np.log2(np.arange(k) + 2.0) if decay == "dcg" else np.ones(k)


def best_expected_clicks(user: SimUser, exam: np.ndarray) -> float:
    """Expected clicks of the best slate: most attractive candidates in the most examined positions."""
    top = np.sort(user.attraction)[::-1][: len(exam)]
    return float(top @ exam[: len(top)])


@dataclass
class PolicyRun:
    """What one policy did over the simulated requests."""

    policy: str
    steps: int
    clicks: int = 0
    impressions: int = 0
    expected_clicks: float = 0.0
    new_item_impressions: int = 0
    degraded: int = 0
    #: Cumulative expected regret after each step.
    regret_curve: np.ndarray = field(default_factory=lambda: np.empty(0))
    logged: list[LoggedRequest] = field(default_factory=list)

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def expected_ctr(self) -> float:
        return self.expected_clicks / self.impressions if self.impressions else 0.0

    @property
    def regret(self) -> float:
        return float(self.regret_curve[-1]) if self.regret_curve.size else 0.0

    @property
    def new_item_exposure(self) -> float:
        return self.new_item_impressions / self.impressions if self.impressions else 0.0


def user_sequence(data: SimulationData, steps: int, seed: int) -> np.ndarray:
    """Indices of the users making each request: one seeded draw shared by every policy."""
    return np.random.default_rng(seed).integers(len(data.users), size=steps)


def simulate(
    data: SimulationData, policy: str, bandit: BanditConfig, sim: SimulatorConfig, *, log: bool = False
) -> PolicyRun:
    """Run ``policy`` for ``sim.steps`` requests against an in-memory state; ``log`` keeps an OPE log."""
    settings = bandit.model_copy(update={"enabled": True, "staleness_s": None, "seed": sim.seed})
    reranker = BanditReranker(settings, MemoryStore(), policy=make_policy(policy, settings),
                              rng=np.random.default_rng(sim.seed))
    clicks_rng = np.random.default_rng(sim.seed + 1)
    exam = examination(sim.k, sim.position_decay)
    run = PolicyRun(policy, sim.steps)
    regret = np.empty(sim.steps)
    total_regret, pending = 0.0, []
    for step, u in enumerate(user_sequence(data, sim.steps, sim.seed)):
        user = data.users[u]
        slate = reranker.rerank(user.candidates, user.context, sim.k)
        ranks = np.array(slate.ranker_ranks, dtype=np.int64)
        probs = exam[: len(ranks)] * user.attraction[ranks]
        clicked = clicks_rng.random(len(ranks)) < probs
        total_regret += best_expected_clicks(user, exam) - float(probs.sum())
        regret[step] = total_regret
        _count(run, user, ranks, probs, clicked, slate.degraded)
        request_id = f"sim-{step}"
        pending += [
            Impression.from_served(s, clicked=bool(c)) for s, c in zip(slate.served(request_id), clicked)
        ]
        if log:
            run.logged.append(
                _logged(request_id, slate.policy, user, slate.items, slate.propensities, clicked)
            )
        if (step + 1) % sim.feedback_batch == 0:
            reranker.update(pending)
            pending = []
    run.regret_curve = regret
    return run


def _count(run: PolicyRun, user: SimUser, ranks: np.ndarray, probs: np.ndarray, clicked: np.ndarray,
           degraded: bool) -> None:
    run.clicks += int(clicked.sum())
    run.impressions += len(ranks)
    run.expected_clicks += float(probs.sum())
    run.new_item_impressions += int(user.new_item[ranks].sum())
    run.degraded += int(degraded)


def _logged(
    request_id: str,
    policy: str,
    user: SimUser,
    items: tuple[str, ...],
    propensities: tuple[float, ...],
    clicked: np.ndarray,
) -> LoggedRequest:
    return LoggedRequest(
        request_id=request_id, policy=policy, candidates=user.candidates.item_ids,
        slate=tuple(LoggedItem(item, position, propensity, float(c))
                    for position, (item, propensity, c) in enumerate(zip(items, propensities, clicked))),
    )


def true_value(data: SimulationData, matrix_of, k: int, decay: str) -> float:
    """Exact expected clicks per request of a stationary policy over the uniform user draw.

    ``matrix_of(n_candidates, k)`` gives the policy's [n, k] position propensities (as the OPE targets do).
    """
    exam = examination(k, decay)
    values = [float(user.attraction @ matrix_of(len(user.candidates), k) @ exam) for user in data.users]
    return float(np.mean(values))
