"""Retraining trigger: turn a drift summary into a decision, start the retraining pipeline, log each decision.

Order of the rules (the first that applies decides):

1. **Nothing to do** - no check drifted and quality is not below its floor: ``skipped``.
2. **Cool-down** - a retraining was triggered less than ``trigger.cooldown_seconds`` ago: ``skipped``.
3. **Debounce** - the last triggered run is still active (its KFP state is in ``kfp.active_states``):
   ``skipped``. When its state cannot be read after the retries, the trigger does not risk a duplicate run:
   ``failed``.
4. **Launch** - create the run (retried ``max_attempts`` times with exponential back-off): ``triggered`` with
   the run id, or ``failed`` with every error.

Every decision, including "nothing to do", becomes one MLflow run (tags ``hyperrec.monitoring.*``) and one
line of the local JSONL decision log; the log line is written even when MLflow is unreachable (it then records
the MLflow error). The last ``triggered`` decision in the log (or, when the log is empty, in MLflow) is the
memory behind the cool-down and the debounce.

Launchers (``KfpLauncher`` through the KFP API, ``LocalLauncher`` embedded) live in
``hyperrec.monitoring.launchers``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hyperrec.errors import HyperrecError
from hyperrec.monitoring.launchers import RetrainLauncher, RetrainRequest
from hyperrec.monitoring.settings import MonitoringConfig

logger = logging.getLogger(__name__)

TRIGGERED, SKIPPED, FAILED = "triggered", "skipped", "failed"
TAG_PREFIX = "hyperrec.monitoring."
PIPELINE_RUN_TAG = "hyperrec.pipeline_run"
STEP_TAG = "hyperrec.step"


class MonitoringError(HyperrecError):
    """The monitor could not do what it decided to do (e.g. the KFP API failed on every attempt)."""


class RetryError(Exception):
    """Every attempt of one call failed; ``errors`` holds one message per attempt."""

    def __init__(self, what: str, errors: list[str]) -> None:
        self.what, self.errors = what, errors
        super().__init__(f"{what} failed {len(errors)} time(s); last error: {errors[-1] if errors else '?'}")


@dataclass
class Decision:
    """One trigger decision, exactly as logged."""

    decision: str
    reason: str
    decided_at: str
    decided_at_unix: float
    pipeline_run: str
    launcher: str
    drift_detected: bool
    drifted_checks: list[str]
    quality: dict[str, Any]
    data_window: dict[str, Any]
    run_id: str | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    previous_run_id: str | None = None
    previous_run_state: str | None = None
    cooldown_remaining_s: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    summary_path: str | None = None
    report_path: str | None = None
    mlflow_run_id: str | None = None
    mlflow_error: str | None = None

    @property
    def triggered(self) -> bool:
        return self.decision == TRIGGERED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DecisionLog:
    """Append-only JSONL of decisions; also the trigger's memory of its last triggered run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(dict(record), sort_keys=True, default=str) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def last_triggered(self) -> dict[str, Any] | None:
        for record in reversed(self.records()):
            if record.get("decision") == TRIGGERED:
                return record
        return None


class MlflowDecisionRecorder:
    """One MLflow run per decision in ``experiment``: tags for outcome, metrics for scores, decision.json."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None) -> None:
        self.tracking_uri, self.experiment, self.artifact_location = (tracking_uri, experiment,
                                                                      artifact_location)

    def _client(self) -> tuple[Any, str]:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return client, found.experiment_id
        return client, client.create_experiment(self.experiment, artifact_location=self.artifact_location)

    def record(self, decision: Decision) -> str:
        from mlflow.entities import Metric

        client, experiment_id = self._client()
        tags = {
            STEP_TAG: "monitoring_decision",
            PIPELINE_RUN_TAG: decision.pipeline_run,
            f"{TAG_PREFIX}decision": decision.decision,
            f"{TAG_PREFIX}reason": decision.reason[:4900],
            f"{TAG_PREFIX}drift_detected": str(decision.drift_detected).lower(),
            f"{TAG_PREFIX}drifted_checks": ",".join(decision.drifted_checks),
            f"{TAG_PREFIX}quality_below_floor": str(bool(decision.quality.get("below_floor"))).lower(),
            f"{TAG_PREFIX}launcher": decision.launcher,
            f"{TAG_PREFIX}decided_at_unix": repr(decision.decided_at_unix),
        }
        if decision.run_id:
            tags[f"{TAG_PREFIX}retrain_run_id"] = decision.run_id
        run = client.create_run(
            experiment_id, run_name=f"decision-{decision.decision}-{decision.pipeline_run}", tags=tags)
        run_id = run.info.run_id
        try:
            stamp = int(decision.decided_at_unix * 1000)
            metrics = [Metric(f"drift.{k}", float(v), stamp, 0) for k, v in decision.scores.items()]
            metrics.append(Metric("trigger.attempts", float(decision.attempts), stamp, 0))
            if decision.quality.get("value") is not None:
                metrics.append(Metric("quality.ctr", float(decision.quality["value"]), stamp, 0))
            client.log_batch(run_id, metrics=metrics)
            client.log_dict(run_id, decision.to_dict(), "decision.json")
        finally:
            client.set_terminated(run_id)
        return run_id

    def last_triggered(self) -> dict[str, Any] | None:
        client, experiment_id = self._client()
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_PREFIX}decision` = '{TRIGGERED}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            return None
        tags = runs[0].data.tags
        return {
            "decision": TRIGGERED,
            "decided_at_unix": float(tags.get(f"{TAG_PREFIX}decided_at_unix",
                                              runs[0].info.start_time / 1000)),
            "run_id": tags.get(f"{TAG_PREFIX}retrain_run_id"),
        }


def _num(value: Any, spec: str) -> str:
    return "?" if value is None else format(float(value), spec)


def new_retrain_run_id(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), tz=UTC)
    return f"retrain-{stamp.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class RetrainTrigger:
    """Decides whether to retrain after a drift check, starts the run, and logs the decision (always)."""

    def __init__(
        self,
        config: MonitoringConfig,
        launcher: RetrainLauncher,
        *,
        decision_log: DecisionLog | str | Path | None = None,
        recorder: MlflowDecisionRecorder | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        config_yaml: str | None = None,
    ) -> None:
        self.config = config
        self.settings = config.trigger
        self.launcher = launcher
        log = decision_log or self.settings.decision_log or config.output_dir / "decisions.jsonl"
        self.log = log if isinstance(log, DecisionLog) else DecisionLog(log)
        self.recorder = recorder
        self.clock, self.sleep = clock, sleep
        self.config_yaml = config_yaml

    # -- helpers ------------------------------------------------------------------------------------------
    def _retry(self, what: str, call: Callable[[], Any]) -> tuple[Any, int, list[str]]:
        """Call with bounded retries and exponential back-off; returns (value, attempts, errors)."""
        errors: list[str] = []
        wait = self.settings.backoff_seconds
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                return call(), attempt, errors
            except Exception as exc:  # noqa: BLE001 - any API/transport error is retried, then logged
                errors.append(f"{what} attempt {attempt}: {type(exc).__name__}: {exc}".strip()[:1000])
                logger.warning("%s failed (attempt %d of %d): %s", what, attempt, self.settings.max_attempts,
                               type(exc).__name__)
                if attempt < self.settings.max_attempts:
                    self.sleep(min(wait, self.settings.max_backoff_seconds))
                    wait *= self.settings.backoff_multiplier
        raise RetryError(what, errors)

    def _last_triggered(self) -> dict[str, Any] | None:
        last = self.log.last_triggered()
        if last is None and self.recorder is not None:
            try:
                last = self.recorder.last_triggered()
            except Exception as exc:  # noqa: BLE001 - MLflow is only the fallback memory
                logger.warning("could not read the last triggered decision from MLflow: %s", exc)
        return last

    @staticmethod
    def _drift_reason(summary: Mapping[str, Any]) -> str | None:
        drifted = summary.get("drifted_checks") or []
        if not drifted:
            return None
        parts = []
        for name in drifted:
            check = summary.get("checks", {}).get(name, {})
            p_value = check.get("p_value")
            score, threshold = check.get("score"), check.get("threshold")
            parts.append(
                f"{name} ({check.get('method')} {_num(score, '.3g')} >= {_num(threshold, '.3g')}"
                + (f", p={p_value:.2g})" if p_value is not None else ")")
            )
        return "drift: " + "; ".join(parts)

    @staticmethod
    def _quality_reason(quality: Mapping[str, Any]) -> str | None:
        if not quality.get("below_floor"):
            return None
        return (f"quality: {quality.get('metric', 'ctr')} {_num(quality.get('value'), '.4f')} < floor "
                f"{quality.get('floor')} ({quality.get('impressions')} impressions)")

    # -- the decision -------------------------------------------------------------------------------------
    def decide(
        self,
        result: Any,
        *,
        pipeline_run: str | None = None,
        summary_path: str | Path | None = None,
        report_path: str | Path | None = None,
        current_window: Any = None,
    ) -> Decision:
        """Decide on one drift result (a ``DriftResult`` or its summary dict); log and return the decision.

        Args:
            result: the drift result or its summary dict.
            pipeline_run: the run id that names the decision; generated when None.
            summary_path: the drift summary's path, kept in the decision.
            report_path: the drift report's path, kept in the decision.
            current_window: the checked window's rows, for a launcher whose runs cannot read the local source.

        Returns:
            The decision (skipped, triggered or failed), logged to the JSONL log and, with a recorder, MLflow.
        """
        summary = result.summary() if hasattr(result, "summary") else dict(result)
        now = self.clock()
        decision = self._new_decision(summary, now, pipeline_run, summary_path, report_path)
        reasons = [r for r in (self._drift_reason(summary), self._quality_reason(decision.quality)) if r]
        if not reasons:
            decision.reason = (
                "no drift and quality not below floor (quality "
                f"{decision.quality.get('status', 'not measured')})"
            )
            return self._record(decision)
        why = "; ".join(reasons)
        if self._held_back(decision, why, now):
            return self._record(decision)
        return self._record(self._launch(decision, why, current_window))

    def _new_decision(self, summary: Mapping[str, Any], now: float, pipeline_run: str | None,
                      summary_path: str | Path | None, report_path: str | Path | None) -> Decision:
        """A ``skipped`` decision carrying what the drift summary says (reason filled in by the caller)."""
        current = dict((summary.get("windows") or {}).get("current") or {})
        return Decision(
            decision=SKIPPED,
            reason="",
            decided_at=datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds"),
            decided_at_unix=now,
            pipeline_run=pipeline_run or new_retrain_run_id(now),
            launcher=getattr(self.launcher, "name", type(self.launcher).__name__),
            drift_detected=bool(summary.get("drift_detected")),
            drifted_checks=list(summary.get("drifted_checks") or []),
            quality=dict(summary.get("quality") or {}),
            data_window={k: current.get(k) for k in ("source", "start_unix", "end_unix", "first_event",
                                                      "last_event", "rows")},
            scores={
                f"{name}.score": float(check["score"])
                for name, check in (summary.get("checks") or {}).items()
                if check.get("score") is not None
            },
            summary_path=str(summary_path) if summary_path else None,
            report_path=str(report_path) if report_path else None,
        )

    def _held_back(self, decision: Decision, why: str, now: float) -> bool:
        """True (reason set) when the last triggered run is in its cool-down or, debounced, still active."""
        last = self._last_triggered()
        if last is None:
            return False
        decision.previous_run_id = last.get("run_id")
        elapsed = now - float(last.get("decided_at_unix", 0.0))
        if elapsed < self.settings.cooldown_seconds:
            decision.cooldown_remaining_s = round(self.settings.cooldown_seconds - elapsed, 1)
            decision.reason = (
                f"cool-down: retraining {decision.previous_run_id} was triggered {elapsed:.0f} s ago, "
                f"{decision.cooldown_remaining_s:.0f} s left (would retrain for {why})"
            )
            return True
        if not (self.settings.debounce and decision.previous_run_id):
            return False
        try:
            state, attempts, errors = self._retry(
                "get run state", lambda: self.launcher.run_state(decision.previous_run_id)
            )
        except RetryError as exc:
            decision.decision, decision.errors, decision.attempts = FAILED, exc.errors, len(exc.errors)
            decision.reason = (
                f"could not read the state of run {decision.previous_run_id} after {len(exc.errors)} "
                f"attempts, not starting a possibly duplicate run (would retrain for {why})"
            )
            return True
        decision.previous_run_state, decision.errors = state, list(errors)
        if self.launcher.is_active(state):
            decision.reason = (
                f"debounce: retraining run {decision.previous_run_id} is still {state} "
                f"(would retrain for {why})"
            )
            return True
        return False

    def _launch(self, decision: Decision, why: str, current_window: Any) -> Decision:
        """Start the retraining run (with retries); the decision says triggered, or failed and why."""
        request = RetrainRequest(reason=why, data_window=decision.data_window,
                                 pipeline_run=decision.pipeline_run,
                                 config_yaml=self.config_yaml, current_window=current_window)
        try:
            run_id, attempts, errors = self._retry("create run", lambda: self.launcher.launch(request))
        except RetryError as exc:
            decision.decision = FAILED
            decision.errors += exc.errors
            decision.attempts = len(exc.errors)
            decision.reason = f"retraining wanted ({why}) but the launcher failed {len(exc.errors)} times"
            return decision
        decision.decision, decision.run_id = TRIGGERED, run_id
        decision.attempts, decision.errors = attempts, decision.errors + errors
        decision.reason = f"retraining started: {why}"
        return decision

    def _record(self, decision: Decision) -> Decision:
        """MLflow first (to learn its run id), then the JSONL line, which is written whatever MLflow did."""
        if self.recorder is not None:
            try:
                decision.mlflow_run_id = self.recorder.record(decision)
            except Exception as exc:  # noqa: BLE001 - the JSONL line must still be written
                decision.mlflow_error = f"{type(exc).__name__}: {exc}"[:1000]
                logger.error("could not record the decision in MLflow: %s", decision.mlflow_error)
        self.log.append(decision.to_dict())
        level = logging.WARNING if decision.decision == FAILED else logging.INFO
        logger.log(level, "retraining decision: %s - %s", decision.decision, decision.reason)
        return decision
