"""Fairness floors of the registration gate: limits on the challenger's fairness audit.

Pure functions over a fairness.json dict (``hyperrec.evaluation.fairness``) and ``FairnessFloors``; no MLflow.
A floor set to None is off. A floor whose figure cannot be computed (fewer than two groups with
``min_group_users`` users, no user attribute in the data) is not a failure: it yields a note saying it was not
checked, since the audit reports those groups but their means are too noisy to block on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperrec.evaluation.fairness import AUDIT_JSON
from hyperrec.fairness_settings import FairnessFloors
from hyperrec.registry.gate import GateError, read_models_json


def floors_enabled(floors: FairnessFloors) -> bool:
    return any(value is not None for value in floors.model_dump().values())


def read_audit(evaluation_dir: Path) -> dict[str, Any]:
    """fairness.json beside metrics.json; GateError when a floor is set but the audit is missing."""
    folder = evaluation_dir if evaluation_dir.is_dir() else evaluation_dir.parent
    return read_models_json(
        folder / AUDIT_JSON, schema="hyperrec.evaluation.fairness",
        missing=f"fairness floors are set but there is no {AUDIT_JSON} at {folder} "
        "(turn fairness.audit on in the evaluate step, or run hyperrec audit)",
    )


def check_floors(
    audit: Mapping[str, Any], challenger: str, floors: FairnessFloors
) -> tuple[list[str], list[str]]:
    """(failures, notes) of ``challenger`` against every floor that is set."""
    if challenger not in audit["models"]:
        raise GateError(
            f"model {challenger!r} is not in the fairness audit (models: {sorted(audit['models'])})"
        )
    entry, k = audit["models"][challenger], audit["k"]
    failures: list[str] = []
    notes: list[str] = []
    ratio_floors = [("segment", "ndcg_ratio", floors.min_segment_ndcg_ratio, f"NDCG@{k}"),
                    ("activity", "ndcg_ratio", floors.min_activity_ndcg_ratio, f"NDCG@{k}")]
    attributes = [family for family in entry["groups"] if family.startswith("attribute:")]
    ratio_floors += [(family, "hr_ratio", floors.min_attribute_hr_ratio, f"HR@{k}") for family in attributes]
    if floors.min_attribute_hr_ratio is not None and not attributes:
        notes.append("fairness.floors.min_attribute_hr_ratio not checked: the audit has no user attribute")
    for family, key, floor, metric in ratio_floors:
        if floor is not None:
            _check_ratio(entry["groups"][family], family, key, floor, metric, audit["min_group_users"],
                         failures, notes)
    exposure = entry["exposure"]
    if floors.max_exposure_gini is not None and exposure["gini"] > floors.max_exposure_gini:
        failures.append(f"exposure Gini of the top-{k} lists is {exposure['gini']:.3f}, above the ceiling "
                        f"fairness.floors.max_exposure_gini={floors.max_exposure_gini:g}")
    if floors.min_coverage is not None and exposure["coverage"] < floors.min_coverage:
        failures.append(f"catalogue coverage@{k} is {exposure['coverage']:.3f}, below "
                        f"fairness.floors.min_coverage={floors.min_coverage:g}")
    return failures, notes


def _check_ratio(disparity: Mapping[str, Any], family: str, key: str, floor: float, metric: str,
                 min_users: int, failures: list[str], notes: list[str]) -> None:
    ratio = disparity[key]
    if ratio is None:
        notes.append(f"{family} floor not checked: fewer than two {family} groups with >= {min_users} users")
        return
    if ratio < floor:
        worst, best = disparity["groups"][disparity["worst"]], disparity["groups"][disparity["best"]]
        measure = key.split("_")[0]
        failures.append(
            f"worst {family} group {disparity['worst']!r} has {metric} {worst[measure]:.4f}, {ratio:.1%} of "
            f"the best group {disparity['best']!r} ({best[measure]:.4f}); the floor is {floor:.0%}"
        )
