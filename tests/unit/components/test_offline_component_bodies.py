"""The offline KFP components' bodies (``.python_func``) on the tiny MovieLens fixture: data_prep ->
train_baselines -> evaluate, as kfp.local or a pod would call them, with plain folders as artifacts.

(fine_tune and export: test_lm_component_bodies.py; drift_monitor, validate_and_register, deploy and canary
bodies have their own tests beside their steps.)
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from hyperrec.components.data_prep.component import data_prep
from hyperrec.components.evaluate.component import evaluate
from hyperrec.components.train_baselines.component import train_baselines
from hyperrec.config import load_config

FIXTURES = Path(__file__).parents[2] / "fixtures"


class _Metrics(SimpleNamespace):
    """The one method of ``kfp.dsl.Metrics`` the bodies call."""

    def log_metric(self, name: str, value: float) -> None:
        self.logged[name] = value


def _artifact(path: Path) -> SimpleNamespace:
    return SimpleNamespace(path=str(path))


def test_data_prep_baselines_and_evaluate_bodies(tmp_path: Path, pseudonym_key: str) -> None:
    cfg = load_config(environ={}, overrides=[
        f"output_dir={tmp_path / 'outputs' / 'latest'}", f"data.dataset_dir={FIXTURES / 'movielens_tiny'}",
        "data.download=false",
    ])
    config_yaml = cfg.to_yaml()
    prepared, report = tmp_path / "prepared", tmp_path / "report.md"
    data_prep.python_func(config_yaml=config_yaml, pipeline_run="run-1", prepared=_artifact(prepared),
                          report=_artifact(report))
    assert (prepared / "data_report.json").exists() and report.read_text().strip()

    models = tmp_path / "models"
    train_baselines.python_func(config_yaml=config_yaml, pipeline_run="run-1", prepared=_artifact(prepared),
                                models=_artifact(models))
    assert {p.name for p in models.iterdir()} == {"popularity", "item_knn", "als", "bpr"}

    lm_models = tmp_path / "lm_models"
    lm_models.mkdir()  # no language model in this run: the evaluate body takes an empty folder
    evaluation, table, metrics = tmp_path / "evaluation", tmp_path / "table.md", _Metrics(logged={})
    evaluate.python_func(config_yaml=config_yaml, pipeline_run="run-1", prepared=_artifact(prepared),
                         models=_artifact(models), lm_models=_artifact(lm_models),
                         evaluation=_artifact(evaluation), metrics=metrics, table=_artifact(table))
    result = json.loads((evaluation / "metrics.json").read_text())
    assert set(result["models"]) == {"popularity", "item_knn", "als", "bpr"}
    assert metrics.logged["popularity.full.hr@10"] == result["models"]["popularity"]["full"]["hr@10"]
    assert "popularity" in table.read_text()
    assert (tmp_path / "outputs" / "mlflow.db").exists()  # tracked beside the tmp outputs, not in the repo
