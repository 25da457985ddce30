"""What one controller step reads: each revision's serving metrics over the step, and cumulative CTR
counts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from hyperrec.experiments.sequential import ArmCounts

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class ServingWindow:
    """One revision's serving metrics over the last step (from Prometheus, or a simulation)."""

    requests: float
    errors: float
    degraded: float
    p99_seconds: float  #: NaN when the revision answered nothing in the window

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0

    @property
    def degraded_ratio(self) -> float:
        return self.degraded / self.requests if self.requests > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        p99 = None if math.isnan(self.p99_seconds) else self.p99_seconds
        return {**asdict(self), "p99_seconds": p99, "error_rate": self.error_rate,
                "degraded_ratio": self.degraded_ratio}


@dataclass(frozen=True)
class StepEvidence:
    """Everything a decision is based on."""

    champion: ServingWindow
    challenger: ServingWindow
    champion_ctr: ArmCounts  #: cumulative since the canary started
    challenger_ctr: ArmCounts

    def to_dict(self) -> dict[str, Any]:
        return {
            "serving": {CHAMPION: self.champion.to_dict(), CHALLENGER: self.challenger.to_dict()},
            "ctr": {CHAMPION: {**asdict(self.champion_ctr), "ctr": self.champion_ctr.ctr},
                    CHALLENGER: {**asdict(self.challenger_ctr), "ctr": self.challenger_ctr.ctr}},
        }


class EvidenceSource(Protocol):
    """Reads the evidence of the step that just ended (``traffic_percent``: the challenger's share in it)."""

    def read(self, traffic_percent: int) -> StepEvidence: ...
