"""Synthetic event windows and a fake KFP client for the monitoring unit tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

DAY = 86400
START = 1_700_000_000  # 2023-11-14


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
                    row["value"] = float(np.clip(np.round(3.5 + bias + rating_shift + rng.normal(0, 0.8)), 1, 5))
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
    """Serving feedback-log records: impressions with model scores, clicks on some, dwell and ratings after clicks."""
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
                    records.append({"request_id": request, "user_id": f"u{u}", "item_id": f"i{item}",
                                    "event": "dwell", "value": float(rng.lognormal(3, 0.8)), "timestamp": t + 60})
    return records


class FakeKfpClient:
    """Stands in for ``kfp.Client`` in unit tests (no KFP API server can run here).

    Implements the three calls ``KfpLauncher`` makes. ``fail_runs`` / ``fail_gets``: how many of the next
    ``run_pipeline`` / ``get_run`` calls raise a ConnectionError (like an unreachable API server).
    ``states``: run id -> state reported by ``get_run`` (default RUNNING).
    """

    def __init__(self, fail_runs: int = 0, fail_gets: int = 0) -> None:
        self.fail_runs, self.fail_gets = fail_runs, fail_gets
        self.states: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []
        self.get_calls = 0

    def create_experiment(self, name: str, description: str | None = None, namespace: str | None = None):
        return SimpleNamespace(experiment_id=f"exp-{name}", display_name=name)

    def run_pipeline(self, experiment_id: str, job_name: str, **kwargs: Any):
        if self.fail_runs > 0:
            self.fail_runs -= 1
            raise ConnectionError("KFP API server unreachable")
        run_id = f"run-{len(self.runs) + 1}"
        self.runs.append({"run_id": run_id, "experiment_id": experiment_id, "job_name": job_name, **kwargs})
        self.states.setdefault(run_id, "RUNNING")
        return SimpleNamespace(run_id=run_id, state="PENDING")

    def get_run(self, run_id: str):
        self.get_calls += 1
        if self.fail_gets > 0:
            self.fail_gets -= 1
            raise ConnectionError("KFP API server unreachable")
        return SimpleNamespace(run_id=run_id, state=self.states.get(run_id, "RUNNING"))
