"""validate_and_register end to end: metrics.json + bundle folder -> gate -> MLflow registry (or not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperrec.config import HyperrecConfig, load_config
from hyperrec.registry import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_REGISTERED_NAME,
    BundleIntegrityError,
    BundleRegistry,
    GateError,
    config_sha256,
    sha256_file,
)
from hyperrec.steps.validate_and_register import validate_and_register_step

NAME = DEFAULT_REGISTERED_NAME


@pytest.fixture
def cfg(tmp_path: Path, fresh_db) -> HyperrecConfig:
    config = load_config(environ={}, overrides=[f"output_dir={tmp_path / 'outputs' / 'latest'}"])
    fresh_db(tmp_path / "outputs" / "mlflow.db")
    return config


def write_evaluation(folder: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return folder


def decision_artifact(registry: BundleRegistry, run_id: str, tmp: Path) -> dict:
    return json.loads(
        Path(registry.client.download_artifacts(run_id, "gate/decision.json", str(tmp))).read_text()
    )


def test_a_passing_challenger_is_registered_with_lineage_and_a_losing_one_is_not(
        cfg, tmp_path, write_bundle, make_metrics, baseline_values):
    from hyperrec import tracking

    # a data_prep run of the same pipeline run, as hyperrec.steps.data_prep_step logs it
    report = tmp_path / "data_report.json"
    report.write_text('{"rows": 3}\n')
    with tracking.step_run(cfg, "data_prep", "pipe-1"):
        tracking.log_artifacts(report, artifact_path="data_report")
    evaluation = write_evaluation(tmp_path / "eval1", make_metrics({**baseline_values, "next_item_lm": 0.08}))
    bundle = write_bundle(tmp_path / "bundle1", model_name="next_item_lm", seed=b"1")

    result = validate_and_register_step(cfg, "pipe-1", evaluation, bundle)

    json.dumps(result)  # the component returns it as JSON
    decision = result["decision"]
    assert decision["passed"] and decision["challenger"] == "next_item_lm"
    assert result["challenger_source"] == "bundle manifest"
    assert decision["champion_value"] is None
    assert result["registered"]["version"] == "1" and result["registered"]["aliases"] == [CHALLENGER]
    registry = BundleRegistry.from_target(cfg)
    version = registry.version(NAME, "1")
    assert version.run_id == result["mlflow_run_id"]
    assert version.tags["hyperrec.training_run_id"] == "train-run-1"
    assert version.tags["hyperrec.pipeline_run"] == "pipe-1"
    assert version.tags["hyperrec.config_sha256"] == config_sha256(cfg)
    assert version.tags["hyperrec.data_report_sha256"] == sha256_file(report)
    run = registry.client.get_run(result["mlflow_run_id"])
    assert run.data.tags["hyperrec.step"] == "validate_and_register"
    assert run.data.metrics["gate.passed"] == 1.0
    assert run.data.tags["hyperrec.registered_version"] == "1"
    assert decision_artifact(registry, run.info.run_id, tmp_path / "dl1") == decision

    registry.promote(NAME, "1")
    # beats every baseline but not the champion: recorded, returned, nothing registered, no exception
    evaluation = write_evaluation(tmp_path / "eval2", make_metrics({**baseline_values, "next_item_lm": 0.07}))
    result = validate_and_register_step(
        cfg, "pipe-2", evaluation, write_bundle(tmp_path / "bundle2", model_name="next_item_lm", seed=b"2")
    )
    assert not result["decision"]["passed"] and result["registered"] is None
    assert result["decision"]["champion_value"] == pytest.approx(0.08)
    assert result["decision"]["champion_version"] == "1"
    assert registry.aliases(NAME) == {CHAMPION: "1"}
    assert len(registry.client.search_model_versions(f"name = '{NAME}'")) == 1
    run = registry.client.get_run(result["mlflow_run_id"])
    assert run.data.metrics["gate.passed"] == 0.0 and run.info.status == "FINISHED"
    assert decision_artifact(registry, run.info.run_id, tmp_path / "dl2")["passed"] is False

    # better than the champion: version 2 becomes the challenger, the champion stays
    evaluation = write_evaluation(tmp_path / "eval3", make_metrics({**baseline_values, "next_item_lm": 0.1}))
    result = validate_and_register_step(
        cfg, "pipe-3", evaluation, write_bundle(tmp_path / "bundle3", model_name="next_item_lm", seed=b"3")
    )
    assert result["decision"]["passed"] and result["registered"]["version"] == "2"
    assert registry.aliases(NAME) == {CHAMPION: "1", CHALLENGER: "2"}


def test_losing_to_a_baseline_registers_nothing(cfg, tmp_path, bundle_dir, make_metrics, baseline_values):
    evaluation = write_evaluation(
        tmp_path / "eval", make_metrics({**baseline_values, "lm": 0.055, "lm2": 0.01})
    )
    result = validate_and_register_step(cfg, "pipe", evaluation, bundle_dir, min_improvement=0.0)
    assert result["challenger_source"] == "best learned model"  # the bundle's "ranker" is not in metrics.json
    assert result["decision"]["challenger"] == "lm" and not result["decision"]["passed"]
    assert result["registered"] is None
    assert BundleRegistry.from_target(cfg).aliases(NAME) == {}


def test_broken_inputs_fail_the_step(cfg, tmp_path, bundle_dir, make_metrics, baseline_values):
    evaluation = write_evaluation(tmp_path / "eval", make_metrics({**baseline_values, "lm": 0.08}))
    with pytest.raises(GateError, match="'ghost' is not in metrics.json"):
        validate_and_register_step(cfg, "pipe", evaluation, bundle_dir, "ghost")
    cfg.evaluation.gate_metric = "full.ndcg@50"
    with pytest.raises(GateError, match="metric 'full.ndcg@50' missing"):
        validate_and_register_step(cfg, "pipe", evaluation, bundle_dir, "lm")
    cfg.evaluation.gate_metric = "full.ndcg@10"
    only_baselines = write_evaluation(tmp_path / "eval-b", make_metrics(baseline_values))
    with pytest.raises(GateError, match="no learned model"):
        validate_and_register_step(cfg, "pipe", only_baselines, bundle_dir)
    (bundle_dir / "items.parquet").write_bytes(b"tampered")
    with pytest.raises(BundleIntegrityError):
        validate_and_register_step(cfg, "pipe", evaluation, bundle_dir, "lm")
    assert BundleRegistry.from_target(cfg).aliases(NAME) == {}


def test_the_component_body_returns_the_step_result_as_json(cfg, tmp_path, bundle_dir, make_metrics,
                                                            baseline_values):
    from kfp.dsl import Artifact

    from hyperrec.components.validate_and_register import validate_and_register

    evaluation = write_evaluation(tmp_path / "eval", make_metrics({**baseline_values, "lm": 0.08}))
    out = validate_and_register.python_func(
        config_yaml=cfg.to_yaml(), pipeline_run="kfp-1",
        evaluation=Artifact(uri=str(evaluation)), bundle=Artifact(uri=str(bundle_dir)),
        challenger="lm", registered_name="component-test", min_improvement=0.0,
    )
    result = json.loads(out.registration)
    assert out.registered is True
    assert result["registered"]["name"] == "component-test" and result["registered"]["version"] == "1"
    assert result["decision"]["passed"] and result["challenger_source"] == "argument"
    spec = validate_and_register.component_spec
    assert set(spec.inputs) >= {"config_yaml", "pipeline_run", "evaluation", "bundle"}
    assert spec.outputs["registration"].type == "String" and spec.outputs["registered"].type == "Boolean"
