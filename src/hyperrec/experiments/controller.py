"""The canary state machine: traffic steps (e.g. 10 → 50 → 100 %), each step ending in promote, hold or roll
back.

Order of a step's checks, and why:

1. **Guardrails** (error rate, p99 latency, degraded ratio of the step): any violation rolls back at once,
   whatever the CTR; too few challenger requests to judge means hold.
2. **CTR test** (``MixtureSequentialTest`` on cumulative impressions and clicks, looked at every step):
   significantly worse → roll back; significantly better → promote to the next stage once the stage has had
   ``min_steps_per_stage`` healthy steps.
3. **Ramp without proof**: a healthy, not-worse challenger moves up the stages *below 100 %* after
   ``min_steps_per_stage`` steps, so that the test gets data faster; the last move, to 100 % (the real
   promotion, MLflow alias included), needs the test's "better".
4. **Stop**: once the challenger has had the planned impressions (``max_sample_size``, the power analysis) or
   ``max_steps`` have passed without a "better", it is rolled back: no detectable improvement, champion kept.

The state (stage, steps, the test's running p-value and interval) is written with every decision, so a
controller that restarts resumes from the decision log.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hyperrec.experiments.evidence import StepEvidence
from hyperrec.experiments.guardrails import check_guardrails
from hyperrec.experiments.sequential import MixtureSequentialTest, SequentialResult, max_sample_size
from hyperrec.experiments.settings import CanaryConfig

PROMOTE, HOLD, ROLLBACK = "promote", "hold", "rollback"
RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled-back"


@dataclass
class CanaryState:
    """Where a canary stands; JSON-ready so that it can be resumed from the decision log."""

    step: int = 0
    stage: int = 0
    steps_in_stage: int = 0
    status: str = RUNNING
    p_value: float = 1.0
    ci_low: float = -math.inf
    ci_high: float = math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            key: (None if isinstance(v, float) and math.isinf(v) else v) for key, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanaryState:
        state = cls(**{k: v for k, v in data.items() if k not in ("ci_low", "ci_high")})
        state.ci_low = -math.inf if data.get("ci_low") is None else float(data["ci_low"])
        state.ci_high = math.inf if data.get("ci_high") is None else float(data["ci_high"])
        return state


@dataclass(frozen=True)
class Decision:
    """One step's outcome with everything it was based on."""

    step: int
    action: str
    traffic_before: int
    traffic_after: int
    reason: str
    evidence: dict[str, Any]
    test: dict[str, Any]
    guardrails: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.action == ROLLBACK or (self.action == PROMOTE and self.traffic_after == 100)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CanaryController:
    """Decides each step of one canary; ``state`` resumes an earlier run."""

    def __init__(self, cfg: CanaryConfig, state: CanaryState | None = None) -> None:
        self.cfg = cfg
        self.state = state or CanaryState()
        self.tau = cfg.baseline_ctr * cfg.mde_relative
        self.planned_impressions = max_sample_size(cfg.baseline_ctr, cfg.mde_relative, alpha=cfg.alpha,
                                                   power=cfg.power)
        self.test = MixtureSequentialTest(tau=self.tau, alpha=cfg.alpha)
        self.test.p_value, self.test.ci_low, self.test.ci_high = (self.state.p_value, self.state.ci_low,
                                                                  self.state.ci_high)

    @property
    def traffic_percent(self) -> int:
        """The challenger's share now (0 once rolled back)."""
        if self.state.status == ROLLED_BACK:
            return 0
        return self.cfg.traffic_steps[self.state.stage]

    @property
    def running(self) -> bool:
        return self.state.status == RUNNING

    def step(self, evidence: StepEvidence) -> Decision:
        """Decide the step whose ``evidence`` was just read, and move the state on.

        Args:
            evidence: the serving windows and cumulative CTR counts of both arms for this step.

        Returns:
            The decision: action, traffic before and after, reason, evidence, test and guardrail results,
            state.

        Raises:
            ValueError: the canary already reached a final decision.
        """
        if not self.running:
            raise ValueError(f"the canary is already {self.state.status}")
        state = self.state
        state.step += 1
        state.steps_in_stage += 1
        before = self.traffic_percent
        guard = check_guardrails(evidence.champion, evidence.challenger, self.cfg.guardrails)
        result = self.test.look(evidence.champion_ctr, evidence.challenger_ctr)
        state.p_value, state.ci_low, state.ci_high = result.p_value, result.ci_low, result.ci_high
        action, reason = self._choose(guard.passed, guard.violations, result, evidence)
        if action == PROMOTE:
            state.stage += 1
            state.steps_in_stage = 0
            if self.traffic_percent == 100:
                state.status = PROMOTED
        elif action == ROLLBACK:
            state.status = ROLLED_BACK
        test = {**result.to_dict(), "tau": self.tau, "alpha": self.cfg.alpha,
                "planned_impressions": self.planned_impressions}
        return Decision(
            step=state.step, action=action, traffic_before=before, traffic_after=self.traffic_percent,
            reason=reason, evidence=evidence.to_dict(), test=_finite(test),
            guardrails={"passed": guard.passed, "violations": list(guard.violations)}, state=state.to_dict(),
        )

    def _choose(self, healthy: bool | None, violations: tuple[str, ...], result: SequentialResult,
                evidence: StepEvidence) -> tuple[str, str]:
        state, cfg = self.state, self.cfg
        if healthy is False:
            return ROLLBACK, "guardrail violated: " + "; ".join(violations)
        if result.verdict == "worse":
            return ROLLBACK, (f"CTR significantly worse: difference {result.difference:+.5f}, always-valid "
                              f"p={result.p_value:.4g} <= {cfg.alpha}")
        stage_done = state.steps_in_stage >= cfg.min_steps_per_stage
        next_share = cfg.traffic_steps[min(state.stage + 1, len(cfg.traffic_steps) - 1)]
        if healthy and stage_done and result.verdict == "better":
            return PROMOTE, (f"healthy and CTR significantly better: difference {result.difference:+.5f}, "
                             f"always-valid p={result.p_value:.4g} <= {cfg.alpha}; to {next_share}%")
        if healthy and stage_done and next_share < 100:
            return PROMOTE, f"healthy for {state.steps_in_stage} steps and not worse; ramp to {next_share}%"
        seen = evidence.challenger_ctr.impressions
        if seen >= self.planned_impressions:
            return ROLLBACK, (f"no significant improvement after {seen} challenger impressions (planned "
                              f"{self.planned_impressions} for a {cfg.mde_relative:.0%} lift); champion kept")
        if state.step >= cfg.max_steps:
            return ROLLBACK, f"no conclusion within max_steps={cfg.max_steps}; champion kept"
        if healthy is None:
            return HOLD, violations[0]
        if result.verdict == "better":
            return HOLD, (
                f"CTR significantly better (p={result.p_value:.4g}); step {state.steps_in_stage} of "
                f"{cfg.min_steps_per_stage} healthy steps at {self.traffic_percent}%"
            )
        return HOLD, (f"CTR inconclusive (difference {result.difference:+.5f}, p={result.p_value:.4g}); "
                      f"{seen}/{self.planned_impressions} planned challenger impressions")


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: an unbounded interval end is written as null."""
    return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in values.items()}
