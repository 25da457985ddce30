"""Every canary decision with its evidence: one JSON line per step (also the state a restart resumes from),
mirrored to MLflow as step metrics of one run per canary so the rollout can be read beside its training."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from hyperrec.experiments.controller import CanaryState, Decision

logger = logging.getLogger(__name__)


class DecisionLog:
    """Append-only JSONL of decisions (flushed and fsynced per line: a decision acted on is never lost)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, decision: Decision, **context: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({**context, **decision.to_dict()}, sort_keys=True, allow_nan=False) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [
            json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def resume_state(self, challenger_version: str) -> CanaryState | None:
        """The state after the last decision about ``challenger_version``, or None when it has none yet."""
        mine = [r for r in self.records() if r.get("challenger_version") == challenger_version]
        return CanaryState.from_dict(mine[-1]["state"]) if mine else None


def log_to_mlflow(tracking_uri: str, experiment: str, run_name: str, decision: Decision) -> None:
    """One MLflow run per canary (found by name), one metric point per step, the last decision as tags.

    Args:
        tracking_uri: the MLflow tracking URI.
        experiment: the MLflow experiment (created if missing).
        run_name: the canary's run name; its run is created on the first step.
        decision: the step's decision; a final one also logs ``final_decision.json`` and ends the run.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    runs = client.search_runs([experiment_id], f"tags.mlflow.runName = '{run_name}'", max_results=1)
    run_id = runs[0].info.run_id if runs else client.create_run(experiment_id, run_name=run_name).info.run_id
    test, serving = decision.test, decision.evidence["serving"]
    metrics = {"traffic_percent": decision.traffic_after, "p_value": test["p_value"],
               "ctr_difference": test["difference"],
               "challenger_error_rate": serving["challenger"]["error_rate"],
               "challenger_degraded_ratio": serving["challenger"]["degraded_ratio"]}
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value), step=decision.step)
    client.set_tag(run_id, "hyperrec.canary.last_action", decision.action)
    client.set_tag(run_id, "hyperrec.canary.last_reason", decision.reason[:5000])
    if decision.final:
        client.log_text(
            run_id, json.dumps(decision.to_dict(), indent=2, sort_keys=True), "final_decision.json"
        )
        client.set_terminated(run_id)
