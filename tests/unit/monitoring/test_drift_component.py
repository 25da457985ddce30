"""The drift_monitor KFP component: its interface, and its thin body run in-process."""

import json
import warnings
from types import SimpleNamespace

import pytest
import yaml
from kfp import compiler, components, dsl, local
from kfp.dsl import Artifact, Dataset, Output
from monitoring_helpers import synthetic_events

from hyperrec.components import DEFAULT_IMAGE
from hyperrec.components.drift_monitor import drift_monitor
from hyperrec.config import HyperrecConfig


def test_component_interface_compiles(tmp_path):
    path = tmp_path / "drift_monitor.yaml"
    compiler.Compiler().compile(drift_monitor, str(path))
    loaded = components.load_component_from_file(str(path))
    assert set(loaded.component_spec.inputs) == {"config_yaml", "pipeline_run", "reference", "current",
                                                 "force_retrain"}
    assert loaded.component_spec.inputs["force_retrain"].default is False
    assert set(loaded.component_spec.outputs) == {"report", "summary", "Output"}
    spec = yaml.safe_load(path.read_text())
    outputs = spec["components"]["comp-drift-monitor"]["outputDefinitions"]
    assert outputs["parameters"]["Output"]["parameterType"] == "BOOLEAN"
    assert outputs["artifacts"]["report"]["artifactType"]["schemaTitle"] == "system.HTML"
    assert spec["deploymentSpec"]["executors"]["exec-drift-monitor"]["container"]["image"] == DEFAULT_IMAGE


def test_component_body_writes_report_and_summary_and_returns_whether_to_retrain(tmp_path):
    reference, current = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    synthetic_events(150, seed=1).to_parquet(reference)
    synthetic_events(150, seed=2, rating_shift=0.6).to_parquet(current)
    cfg = HyperrecConfig(output_dir=tmp_path / "outputs" / "latest")
    report, summary = tmp_path / "out" / "report.html", tmp_path / "out" / "summary.json"
    retrain = drift_monitor.python_func(
        config_yaml=cfg.to_json(), pipeline_run="test",
        reference=SimpleNamespace(path=str(reference)), current=SimpleNamespace(path=str(current)),
        report=SimpleNamespace(path=str(report)), summary=SimpleNamespace(path=str(summary)),
    )
    assert retrain is True
    assert report.stat().st_size > 10_000 and '"drift_detected": true' in summary.read_text()
    assert (tmp_path / "outputs" / "mlflow.db").exists()


@pytest.mark.local
@pytest.mark.parametrize(
    "shift, force, retrain",
    [(0.6, False, True), (0.0, False, False), (0.0, True, True)],
    ids=["drift", "no drift", "no drift, forced"],
)
def test_component_runs_under_kfp_local_and_feeds_dsl_if(tmp_path, shift, force, retrain):
    reference, current = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    synthetic_events(150, seed=1).to_parquet(reference)
    synthetic_events(150, seed=1 if shift == 0 else 2, rating_shift=shift).to_parquet(current)
    cfg = HyperrecConfig(output_dir=tmp_path / "outputs" / "latest")

    @dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
    def retrain_marker(marker: Output[Artifact]):
        with open(marker.path, "w") as handle:
            handle.write("retrain")

    @dsl.pipeline
    def monitor(config_yaml: str, pipeline_run: str, force_retrain: bool) -> bool:
        ref = dsl.importer(artifact_uri=str(reference), artifact_class=Dataset, reimport=False)
        cur = dsl.importer(artifact_uri=str(current), artifact_class=Dataset, reimport=False)
        check = drift_monitor(config_yaml=config_yaml, pipeline_run=pipeline_run, reference=ref.output,
                              current=cur.output, force_retrain=force_retrain)
        with dsl.If(check.outputs["Output"] == True):  # noqa: E712 - KFP condition, not Python
            retrain_marker()
        return check.outputs["Output"]

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               workspace_root=str(tmp_path / "workspace"), raise_on_error=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        run = monitor(config_yaml=cfg.to_json(), pipeline_run="local-test", force_retrain=force)
    assert run.output is retrain
    assert bool(list((tmp_path / "root").rglob("marker"))) is retrain  # whether the dsl.If branch ran
    (summary,) = (tmp_path / "root").rglob("summary")
    assert json.loads(summary.read_text())["drift_detected"] is (shift > 0)
