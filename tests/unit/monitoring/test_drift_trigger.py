"""Retraining trigger: decisions, debounce, cool-down, retries, and the decision log (JSONL + MLflow)."""

import json

import pytest
from monitoring_helpers import KFP_UPLOADED as KFP
from monitoring_helpers import drift_summary as summary

from hyperrec.errors import ConfigError
from hyperrec.monitoring.launchers import KfpLauncher, LocalLauncher
from hyperrec.monitoring.settings import KfpSettings, MonitoringConfig
from hyperrec.monitoring.trigger import (
    FAILED,
    SKIPPED,
    TRIGGERED,
    DecisionLog,
    MlflowDecisionRecorder,
    RetrainTrigger,
)


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def make(tmp_path, client, *, recorder=None, **trigger):
    cfg = MonitoringConfig.model_validate({"trigger": {"kfp": KFP, "cooldown_seconds": 3600, **trigger}})
    sleeps = []
    clock = Clock()
    engine = RetrainTrigger(
        cfg,
        KfpLauncher(client, cfg.trigger.kfp),
        decision_log=tmp_path / "decisions.jsonl",
        recorder=recorder,
        clock=clock,
        sleep=sleeps.append,
        config_yaml="{}",
    )
    return engine, client, clock, sleeps


def logged(tmp_path):
    return DecisionLog(tmp_path / "decisions.jsonl").records()


def test_no_drift_is_logged_as_skipped_and_starts_nothing(tmp_path, kfp_client):
    engine, client, _, _ = make(tmp_path, kfp_client())
    decision = engine.decide(summary(drift=False))
    assert decision.decision == SKIPPED and "no drift" in decision.reason
    assert client.runs == []
    assert [r["decision"] for r in logged(tmp_path)] == [SKIPPED]


def test_drift_starts_a_kfp_run_with_the_data_window_and_the_reason(tmp_path, kfp_client):
    engine, client, _, _ = make(tmp_path, kfp_client())
    decision = engine.decide(summary(), pipeline_run="retrain-1")
    assert decision.decision == TRIGGERED and decision.run_id == "run-1"
    (run,) = client.runs
    assert run["pipeline_id"] == KFP["pipeline_id"] and run["enable_caching"] is False
    params = run["params"]
    assert params["pipeline_run"] == "retrain-1" and params["config_yaml"] == "{}"
    assert "item_popularity" in params["trigger_reason"]
    assert json.loads(params["data_window"]) == {
        "source": "feedback.jsonl", "start_unix": 100, "end_unix": 200, "first_event": "1970-01-01T00:01:40Z",
        "last_event": "1970-01-01T00:03:19Z", "rows": 1234}
    (record,) = logged(tmp_path)
    assert record["decision"] == TRIGGERED and record["run_id"] == "run-1" and record["drifted_checks"]


def test_quality_below_the_floor_triggers_without_drift(tmp_path, kfp_client):
    engine, client, _, _ = make(tmp_path, kfp_client())
    decision = engine.decide(summary(drift=False, ctr=0.004))
    assert decision.decision == TRIGGERED and "quality" in decision.reason and "0.0040" in decision.reason
    assert len(client.runs) == 1


def test_cool_down_then_debounce_then_a_new_run(tmp_path, kfp_client):
    engine, client, clock, _ = make(tmp_path, kfp_client())
    assert engine.decide(summary()).decision == TRIGGERED

    clock.now += 600  # inside the one-hour cool-down
    decision = engine.decide(summary())
    assert decision.decision == SKIPPED and decision.reason.startswith("cool-down")
    assert decision.cooldown_remaining_s == pytest.approx(3000)
    assert client.get_calls == 0  # no API call needed to know that

    clock.now += 3600  # cool-down over, but run-1 still RUNNING
    decision = engine.decide(summary())
    assert decision.decision == SKIPPED and decision.reason.startswith("debounce")
    assert decision.previous_run_id == "run-1" and decision.previous_run_state == "RUNNING"

    client.states["run-1"] = "SUCCEEDED"
    decision = engine.decide(summary())
    assert decision.decision == TRIGGERED and decision.run_id == "run-2"
    assert [r["decision"] for r in logged(tmp_path)] == [TRIGGERED, SKIPPED, SKIPPED, TRIGGERED]


def test_kfp_api_failures_are_retried_with_backoff(tmp_path, kfp_client):
    engine, client, _, sleeps = make(tmp_path, kfp_client(fail_runs=2))
    decision = engine.decide(summary())
    assert decision.decision == TRIGGERED and decision.attempts == 3
    assert len(decision.errors) == 2 and "ConnectionError" in decision.errors[0]
    assert sleeps == [5.0, 10.0]


def test_kfp_api_failing_every_attempt_is_logged_as_failed(tmp_path, kfp_client):
    engine, client, _, sleeps = make(tmp_path, kfp_client(fail_runs=99), max_attempts=4,
                                     backoff_seconds=1, max_backoff_seconds=3)
    decision = engine.decide(summary())
    assert decision.decision == FAILED and decision.run_id is None and decision.attempts == 4
    assert sleeps == [1.0, 2.0, 3.0]  # bounded back-off
    (record,) = logged(tmp_path)
    assert record["decision"] == FAILED and len(record["errors"]) == 4
    assert "launcher failed 4 times" in record["reason"]
    # a failed launch does not start a cool-down: the next check tries again
    client.fail_runs = 0
    assert engine.decide(summary()).decision == TRIGGERED


def test_unreadable_run_state_fails_instead_of_starting_a_duplicate(tmp_path, kfp_client):
    engine, client, clock, _ = make(tmp_path, kfp_client())
    engine.decide(summary())
    clock.now += 7200
    client.fail_gets = 5
    decision = engine.decide(summary())
    assert decision.decision == FAILED and "could not read the state of run run-1" in decision.reason
    assert len(client.runs) == 1


def test_every_decision_is_an_mlflow_run_and_mlflow_is_the_fallback_memory(tmp_path, kfp_client):
    recorder = MlflowDecisionRecorder(f"sqlite:///{tmp_path / 'mlflow.db'}", "monitoring-test",
                                      (tmp_path / "artifacts").as_uri())
    engine, client, clock, _ = make(tmp_path, kfp_client(), recorder=recorder)
    first = engine.decide(summary(), pipeline_run="retrain-a")
    clock.now += 60
    second = engine.decide(summary(drift=False))
    assert first.mlflow_run_id and second.mlflow_run_id and first.mlflow_error is None

    from mlflow import MlflowClient

    mlflow = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("monitoring-test")
    runs = {r.info.run_id: r for r in mlflow.search_runs([experiment.experiment_id])}
    tags = runs[first.mlflow_run_id].data.tags
    assert tags["hyperrec.monitoring.decision"] == TRIGGERED
    assert tags["hyperrec.monitoring.retrain_run_id"] == "run-1"
    assert tags["hyperrec.pipeline_run"] == "retrain-a"
    assert runs[first.mlflow_run_id].data.metrics["drift.item_popularity.score"] == pytest.approx(1.38)
    assert runs[second.mlflow_run_id].data.tags["hyperrec.monitoring.decision"] == SKIPPED

    # a fresh pod without the JSONL log still honours the cool-down through MLflow
    (tmp_path / "decisions.jsonl").unlink()
    decision = engine.decide(summary())
    assert decision.decision == SKIPPED and decision.previous_run_id == "run-1"


def test_an_unreachable_mlflow_never_silences_the_decision(tmp_path, kfp_client):
    class BrokenRecorder:
        def record(self, decision):
            raise ConnectionError("mlflow down")

        def last_triggered(self):
            raise ConnectionError("mlflow down")

    engine, _, _, _ = make(tmp_path, kfp_client(), recorder=BrokenRecorder())
    decision = engine.decide(summary())
    assert decision.decision == TRIGGERED and "mlflow down" in decision.mlflow_error
    (record,) = logged(tmp_path)
    assert record["decision"] == TRIGGERED and "mlflow down" in record["mlflow_error"]


def test_local_launcher_runs_the_injected_callable(tmp_path):
    started = []
    cfg = MonitoringConfig()
    engine = RetrainTrigger(cfg, LocalLauncher(lambda request: started.append(request) or "local-1"),
                            decision_log=tmp_path / "d.jsonl")
    decision = engine.decide(summary(), pipeline_run="retrain-x")
    assert decision.decision == TRIGGERED and decision.run_id == "local-1" and decision.launcher == "local"
    assert started[0].pipeline_run == "retrain-x" and started[0].data_window["rows"] == 1234


URIS = {key: KFP[key] for key in ("reference_uri", "current_uri")}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({**URIS}, "needs pipeline_id and pipeline_version_id"),
        ({"pipeline_id": "p", **URIS}, "needs both pipeline_id and pipeline_version_id"),
        (
            {"pipeline_package": "retraining.yaml"},
            "reference_uri and monitoring.trigger.kfp.current_uri must name",
        ),
        (
            {"pipeline_package": "retraining.yaml", "reference_uri": KFP["reference_uri"]},
            "monitoring.trigger.kfp.current_uri must name the object-store location",
        ),
    ],
    ids=["no pipeline", "pipeline without version", "no URIs", "no current_uri"],
)
def test_a_kfp_launcher_refuses_settings_that_could_only_start_broken_runs(kfp_client, settings, message):
    with pytest.raises(ConfigError, match=message):
        KfpLauncher(kfp_client(), KfpSettings(host="http://kfp", **settings))


@pytest.mark.parametrize(
    "uri", ["/var/lib/hyperrec/feedback", "pvc://hyperrec-feedback/", "file:///data", ""]
)
def test_importer_uris_must_be_object_store_uris(uri):
    with pytest.raises(ValueError, match="not a URI the KFP launcher can download"):
        KfpSettings(current_uri=uri)
