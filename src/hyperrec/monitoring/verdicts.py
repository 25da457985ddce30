"""What each drift check compares (``CHECKS``) and the verdict it reaches (``CheckResult``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hyperrec.monitoring.significance import RELATIVE_RATE_CHANGE

Status = Literal["drift", "ok", "insufficient_data", "not_applicable", "disabled"]


@dataclass(frozen=True)
class CheckSpec:
    """One drift check: which column of which table, compared with which Evidently method."""

    name: str
    group: Literal["interactions", "embeddings", "predictions", "outcomes"]
    unit: str
    method: str
    column: str = ""
    categorical: bool = False
    description: str = ""


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec(
            "event_mix",
            "interactions",
            "event",
            "jensenshannon",
            "event",
            True,
            "share of each event type among user events (impressions excluded)",
        ),
        CheckSpec(
            "item_popularity",
            "interactions",
            "event",
            "wasserstein",
            "item_popularity",
            False,
            "log(1 + reference events on the event's item), leave-one-out in the reference",
        ),
        CheckSpec(
            "rating", "interactions", "event", "wasserstein", "rating", False, "value of rating events"
        ),
        CheckSpec(
            "dwell_seconds",
            "interactions",
            "event",
            "wasserstein",
            "dwell_seconds",
            False,
            "log(1 + dwell seconds) of view/dwell events",
        ),
        CheckSpec(
            "user_activity",
            "interactions",
            "user",
            "wasserstein",
            "user_activity",
            False,
            "log(1 + events per active day), one row per user",
        ),
        CheckSpec(
            "item_embeddings",
            "embeddings",
            "item",
            "model",
            description="domain-classifier AUC on the embeddings of the distinct items consumed in each "
                        "window",
        ),
        CheckSpec(
            "profile_embeddings",
            "embeddings",
            "user",
            "model",
            description="domain-classifier AUC on user profile embeddings",
        ),
        CheckSpec(
            "prediction_score",
            "predictions",
            "recommendation",
            "wasserstein",
            "prediction_score",
            False,
            "model score of served recommendations",
        ),
        CheckSpec(
            "recommended_items",
            "predictions",
            "recommendation",
            "jensenshannon",
            "recommended_item",
            True,
            "which items are recommended (top items of both windows, the rest as 'other')",
        ),
        CheckSpec(
            "ctr",
            "outcomes",
            "impression",
            RELATIVE_RATE_CHANGE,
            "clicked",
            False,
            "click-through rate: clicked impressions / impressions",
        ),
    )
}


@dataclass
class CheckResult:
    """The verdict of one check."""

    name: str
    group: str
    unit: str
    method: str
    threshold: float
    status: Status
    score: float | None = None
    p_value: float | None = None
    reference_rows: int = 0
    current_rows: int = 0
    reference_users: int = 0
    current_users: int = 0
    alpha_per_check: float | None = None
    permutations: int | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drift"] = self.drift
        out["description"] = CHECKS[self.name].description
        return out


def base_fields(spec: CheckSpec, threshold: float) -> dict[str, Any]:
    """The fields of a ``CheckResult`` that come from its spec."""
    return {"name": spec.name, "group": spec.group, "unit": spec.unit, "method": spec.method,
            "threshold": threshold}


def sizes(ref_rows: int, cur_rows: int, ref_units: int, cur_units: int) -> dict[str, int]:
    """The row and user counts of a ``CheckResult``."""
    return {"reference_rows": int(ref_rows), "current_rows": int(cur_rows),
            "reference_users": int(ref_units), "current_users": int(cur_units)}
