"""Settings of the fairness audit, the gate's fairness floors and training-data balancing (``fairness:``).

A module of its own, below ``hyperrec.config`` (which assembles it) and the packages that read it, so that the
audit (evaluation), the gate's floors (registry) and the training-data balancing (data) share one definition
without importing each other; see docs/FAIRNESS.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from hyperrec.settings_base import Section as _Section


class FairnessFloors(_Section):
    """Limits the gate checks on the challenger's audit; None switches a floor off (the default: all off)."""

    min_segment_ndcg_ratio: float | None = Field(
        None, ge=0, le=1, description="Worst / best behavioural segment's NDCG@K must be at least this.")
    min_activity_ndcg_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Worst / best activity group's (new, light, heavy) NDCG@K, at least this.",
    )
    min_attribute_hr_ratio: float | None = Field(
        None, ge=0, le=1,
        description="Disparate impact: worst / best group's HR@K for every user attribute, at least this "
        "(0.8 is the four-fifths rule).")
    max_exposure_gini: float | None = Field(
        None, ge=0, le=1, description="Gini coefficient of item exposure in the top-K lists, at most this.")
    min_coverage: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of the catalogue that appears in some user's top-K, at least this.",
    )


class FairnessConfig(_Section):
    """Who is served how well, and which items get shown: audited after every evaluation."""

    audit: bool = Field(True, description="Run the audit in the evaluate step (fairness.json/.md/.html).")
    k: int = Field(10, ge=1, description="Cutoff of the audit's NDCG/HR and of its exposure counts.")
    activity_new_below: int = Field(
        35,
        ge=1,
        description="Users with fewer history events than this are 'new' (ml-latest-small, whose users "
        "all rated >= 20 movies: the lowest quarter of the test users, 156 of 610).",
    )
    activity_heavy_from: int = Field(
        200,
        ge=1,
        description="Users with at least this many history events are 'heavy' (ml-latest-small: 133 "
        "of 610); between the two: 'light'.",
    )
    min_group_users: int = Field(
        20, ge=1, description="Groups smaller than this are reported but left out of the disparity ratios "
        "(a 5-user group's mean is noise).")
    popularity_bins: int = Field(10, ge=2, le=100, description="Item-popularity bins of the exposure table.")
    users_path: Path | None = Field(
        None, description="Optional user attributes (CSV/JSONL/Parquet): user_id plus attribute columns, "
        "see docs/DATA.md 'User attributes'.")
    attributes: list[str] = Field(
        [], description="Attribute columns to audit; empty: every column of users_path but user_id.")
    balancing: Literal["none", "segments", "activity"] = Field(
        "none", description="Oversample the train users of smaller behavioural segments or activity groups "
        "(measured: see docs/BENCHMARKS.md 'Fairness audit'; off unless it helps).")
    balancing_power: float = Field(
        1.0, gt=0, le=1, description="Copies of a group's users = (largest group / group size) ** power.")
    balancing_max_copies: int = Field(5, ge=1, description="Upper bound on the copies of one user.")
    floors: FairnessFloors = FairnessFloors()

    @model_validator(mode="after")
    def _activity_order(self) -> FairnessConfig:
        if self.activity_heavy_from <= self.activity_new_below:
            raise ValueError("fairness.activity_heavy_from must be > fairness.activity_new_below")
        return self
