"""Synthetic event windows and the compiled retraining pipeline for the monitoring tests (the fake KFP client
is tests/fake_kfp.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kfp import compiler

from hyperrec.config import HyperrecConfig
from hyperrec.pipelines.retraining.pipeline import build_retraining_pipeline

# Trigger settings of an uploaded retraining pipeline with object-store sources, as a cluster config sets
# them.
DATA_BUCKET = "hyperrec-data"
KFP_UPLOADED = {
    "host": "http://kfp.example",
    "pipeline_id": "retraining-id",
    "pipeline_version_id": "retraining-v1",
    "reference_uri": f"s3://{DATA_BUCKET}/reference/prepared/",
    "current_uri": f"s3://{DATA_BUCKET}/feedback/",
}

DAY = 86400
START = 1_700_000_000  # 2023-11-14


def compile_retraining(path: Path, cfg: HyperrecConfig | None = None) -> Path:
    """The real retraining pipeline compiled to ``path`` (what is uploaded to KFP), for the fake's server
    half."""
    compiler.Compiler().compile(build_retraining_pipeline(cfg or HyperrecConfig()), package_path=str(path))
    return path


def synthetic_events(
    n_users: int = 300,
    *,
    seed: int = 0,
    start: int = START,
    days: int = 28,
    n_items: int = 400,
    dwell_scale: float = 1.0,
    rating_shift: float = 0.0,
    event_mix: tuple[float, float, float] = (0.3, 0.4, 0.3),
    user_prefix: str = "u",
) -> pd.DataFrame:
    """Interaction events (click / view with dwell / rating) of ``n_users`` users over ``days`` days.

    Items follow a Zipf-like popularity; each user is active on a few days with 3-10 events per active day.
    The keyword arguments shift exactly one feature each.
    """
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    weights /= weights.sum()
    rows: list[dict[str, Any]] = []
    for u in range(n_users):
        active_days = rng.choice(days, size=int(rng.integers(2, 6)), replace=False)
        bias = rng.normal(0, 0.5)
        for day in active_days:
            for _ in range(int(rng.integers(3, 11))):
                kind = rng.choice(["click", "view", "rating"], p=list(event_mix))
                item = int(rng.choice(n_items, p=weights))
                row = {
                    "user_id": f"{user_prefix}{u}",
                    "item_id": f"i{item}",
                    "item_idx": item,
                    "event": kind,
                    "timestamp": start + int(day) * DAY + int(rng.integers(0, DAY)),
                    "value": 1.0,
                    "dwell_seconds": np.nan,
                    "label": True,
                }
                if kind == "view":
                    row["dwell_seconds"] = float(rng.lognormal(3.0, 0.8) * dwell_scale)
                elif kind == "rating":
                    row["value"] = float(
                        np.clip(np.round(3.5 + bias + rating_shift + rng.normal(0, 0.8)), 1, 5)
                    )
                rows.append(row)
    return pd.DataFrame(rows)


def split_by_user(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two random halves of one period, split by user."""
    users = np.sort(frame["user_id"].unique())
    rng = np.random.default_rng(seed)
    half = set(rng.choice(users, size=len(users) // 2, replace=False))
    mask = frame["user_id"].isin(half)
    return frame[mask].reset_index(drop=True), frame[~mask].reset_index(drop=True)


def feedback_records(
    n_users: int = 200,
    *,
    seed: int = 0,
    start: int = START,
    ctr: float = 0.1,
    score_shift: float = 0.0,
    impressions_per_user: int = 20,
    n_items: int = 100,
) -> list[dict[str, Any]]:
    """Serving feedback-log records: impressions with model scores, clicks on some, dwell and ratings after
    clicks."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    for u in range(n_users):
        for r in range(impressions_per_user // 5):
            request = f"req-{seed}-{u}-{r}"
            t = start + int(rng.integers(0, 7 * 86400))
            for item in rng.choice(n_items, size=5, replace=False):
                score = float(rng.normal(0.5 + score_shift, 0.15))
                records.append({"request_id": request, "user_id": f"u{u}", "item_id": f"i{item}",
                                "event": "impression", "value": score, "timestamp": t})
                if rng.random() < ctr:
                    records.append({"request_id": request, "user_id": f"u{u}", "item_id": f"i{item}",
                                    "event": "click", "value": None, "timestamp": t + 5})
                    records.append(
                        {
                            "request_id": request,
                            "user_id": f"u{u}",
                            "item_id": f"i{item}",
                            "event": "dwell",
                            "value": float(rng.lognormal(3, 0.8)),
                            "timestamp": t + 60,
                        }
                    )
    return records


def drift_summary(drift: bool = True, ctr: float | None = None, floor: float = 0.01) -> dict[str, Any]:
    """A drift summary as ``DriftResult.summary()`` writes it: item_popularity drifted (or not), CTR
    optional."""
    checks = {"item_popularity": {"method": "wasserstein", "score": 1.38 if drift else 0.05, "threshold": 0.2,
                                  "p_value": 0.0017 if drift else None}}
    quality = {
        "metric": "ctr",
        "status": "not_applicable",
        "value": None,
        "floor": floor,
        "below_floor": False,
    }
    if ctr is not None:
        quality.update(value=ctr, impressions=5000, status="below_floor" if ctr < floor else "ok",
                       below_floor=ctr < floor)
    return {
        "drift_detected": drift,
        "drifted_checks": ["item_popularity"] if drift else [],
        "checks": checks,
        "quality": quality,
        "windows": {"current": {"source": "feedback.jsonl", "start_unix": 100, "end_unix": 200,
                                "first_event": "1970-01-01T00:01:40Z", "last_event": "1970-01-01T00:03:19Z",
                                "rows": 1234}},
    }
