"""Canaries simulated step by step: the evidence the controller would read, drawn from known truths.

Each step, ``impressions_per_step`` impressions are split between the revisions by the current traffic share;
clicks are binomial with each revision's true CTR; requests (one per ``slate_size`` impressions) error or
degrade with each revision's true rates; the p99 latency is each revision's configured value. The controller
then decides exactly as on a cluster. Pure Python + numpy, so hundreds of canaries run in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperrec.experiments.controller import CanaryController, Decision
from hyperrec.experiments.evidence import ServingWindow, StepEvidence
from hyperrec.experiments.sequential import ArmCounts
from hyperrec.experiments.settings import CanaryConfig


@dataclass(frozen=True)
class Revision:
    """A revision's true behaviour."""

    ctr: float
    error_rate: float = 0.0
    degraded_ratio: float = 0.0
    p99_seconds: float = 0.05


@dataclass(frozen=True)
class Scenario:
    name: str
    champion: Revision
    challenger: Revision


def scenarios(baseline_ctr: float) -> dict[str, Scenario]:
    """The canary cases: the challenger's CTR ±20 % or equal, and a better challenger that fails or is slow.

    Args:
        baseline_ctr: the champion's CTR.

    Returns:
        Scenario name -> scenario: better, worse, equal, errors, slow.
    """
    champion = Revision(baseline_ctr)
    better = baseline_ctr * 1.2
    return {s.name: s for s in (
        Scenario("better", champion, Revision(better)),
        Scenario("worse", champion, Revision(baseline_ctr * 0.8)),
        Scenario("equal", champion, Revision(baseline_ctr)),
        Scenario("errors", champion, Revision(better, error_rate=0.05, degraded_ratio=0.05)),
        Scenario("slow", champion, Revision(better, p99_seconds=2.0)),
    )}


class SimulatedEvidence:
    """An ``EvidenceSource`` drawing each step's evidence from a scenario."""

    def __init__(self, scenario: Scenario, *, impressions_per_step: int, slate_size: int,
                 rng: np.random.Generator) -> None:
        self.scenario, self.per_step, self.slate, self.rng = scenario, impressions_per_step, slate_size, rng
        self.clicks = {"champion": 0, "challenger": 0}
        self.impressions = {"champion": 0, "challenger": 0}

    def read(self, traffic_percent: int) -> StepEvidence:
        """Serve one step's impressions, split by ``traffic_percent``, and return its evidence.

        Args:
            traffic_percent: the challenger's share of traffic, 0-100.

        Returns:
            Both arms' serving windows of this step and their CTR counts since the start.
        """
        to_challenger = int(self.rng.binomial(self.per_step, traffic_percent / 100.0))
        windows = {
            "champion": self._serve("champion", self.scenario.champion, self.per_step - to_challenger),
            "challenger": self._serve("challenger", self.scenario.challenger, to_challenger),
        }
        return StepEvidence(
            champion=windows["champion"], challenger=windows["challenger"],
            champion_ctr=ArmCounts(self.impressions["champion"], self.clicks["champion"]),
            challenger_ctr=ArmCounts(self.impressions["challenger"], self.clicks["challenger"]),
        )

    def _serve(self, role: str, truth: Revision, impressions: int) -> ServingWindow:
        self.impressions[role] += impressions
        self.clicks[role] += int(self.rng.binomial(impressions, truth.ctr))
        requests = impressions // self.slate
        return ServingWindow(
            requests=float(requests), errors=float(self.rng.binomial(requests, truth.error_rate)),
            degraded=float(self.rng.binomial(requests, truth.degraded_ratio)),
            p99_seconds=truth.p99_seconds if requests else float("nan"),
        )


@dataclass
class SimulatedCanary:
    """One simulated canary: its outcome and every decision."""

    scenario: str
    seed: int
    outcome: str
    decisions: list[Decision] = field(default_factory=list)

    def timeline(self) -> list[dict[str, Any]]:
        """(step, traffic before → after, action, p-value, CTRs, reason) per step, for reports.

        Returns:
            One dict per decision, in step order.
        """
        rows = []
        for d in self.decisions:
            ctr = d.evidence["ctr"]
            rows.append(
                {
                    "step": d.step,
                    "traffic": f"{d.traffic_before}->{d.traffic_after}",
                    "action": d.action,
                    "p_value": round(d.test["p_value"], 5),
                    "champion_ctr": round(ctr["champion"]["ctr"], 5),
                    "challenger_ctr": round(ctr["challenger"]["ctr"], 5),
                    "challenger_impressions": ctr["challenger"]["impressions"],
                    "reason": d.reason,
                }
            )
        return rows


def simulate(cfg: CanaryConfig, scenario: Scenario, *, seed: int, impressions_per_step: int = 20_000,
             slate_size: int = 10) -> SimulatedCanary:
    """Run one canary to its end (bounded by ``cfg.max_steps``)."""
    controller = CanaryController(cfg)
    source = SimulatedEvidence(scenario, impressions_per_step=impressions_per_step, slate_size=slate_size,
                               rng=np.random.default_rng(seed))
    decisions = []
    while controller.running:
        decisions.append(controller.step(source.read(controller.traffic_percent)))
    return SimulatedCanary(scenario.name, seed, controller.state.status, decisions)


def outcome_rates(cfg: CanaryConfig, scenario: Scenario, *, runs: int, first_seed: int = 0,
                  **kwargs: Any) -> dict[str, Any]:
    """How often ``runs`` canaries of ``scenario`` end promoted or rolled back, and after how many steps."""
    results = [simulate(cfg, scenario, seed=first_seed + i, **kwargs) for i in range(runs)]
    promoted = sum(r.outcome == "promoted" for r in results)
    steps = [len(r.decisions) for r in results]
    return {"scenario": scenario.name, "runs": runs, "promoted": promoted, "rolled_back": runs - promoted,
            "promotion_rate": promoted / runs, "mean_steps": float(np.mean(steps)), "max_steps": max(steps)}
