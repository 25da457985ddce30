"""The fine_tune and export KFP components' bodies (``.python_func``) on the tiny MovieLens fixture: data_prep
-> fine_tune -> export, as kfp.local or a pod would call them, with plain folders as artifacts.

The language model is the next-item model on a random tiny BERT (``build_tiny_bert``, never the real MiniLM),
one transformer block of width 16, two epochs: seconds on 2 CPU cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from hyperrec.bundle_verify import verify_bundle
from hyperrec.components.data_prep.component import data_prep
from hyperrec.components.export.component import export
from hyperrec.components.fine_tune.component import fine_tune
from hyperrec.config import load_config
from hyperrec.modeling.item_encoder import build_tiny_bert
from hyperrec.tracking import STEP_TAG

FIXTURES = Path(__file__).parents[2] / "fixtures"
RUN = "run-lm"
EPOCHS = 2


def _artifact(path: Path) -> SimpleNamespace:
    return SimpleNamespace(path=str(path))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The config, the prepared folder and the fine_tune body's output folder."""
    tmp_path = tmp_path_factory.mktemp("lm_components")
    cfg = load_config(environ={}, overrides=[
        f"output_dir={tmp_path / 'outputs' / 'latest'}", f"data.dataset_dir={FIXTURES / 'movielens_tiny'}",
        "data.download=false", "prep.segments_k_max=3", "modeling.train=[next_item_lm]",
        f"modeling.item_encoder.model_path={build_tiny_bert(tmp_path / 'tiny_bert')}",
        f"modeling.item_encoder.cache_dir={tmp_path / 'embeddings'}", "modeling.item_encoder.max_length=24",
        "modeling.runtime.threads=1", "modeling.runtime.progress=false",
        "modeling.next_item.d_model=16", "modeling.next_item.n_layers=1", "modeling.next_item.max_seq_len=8",
        f"modeling.next_item.training.max_epochs={EPOCHS}", f"modeling.next_item.training.patience={EPOCHS}",
    ])
    config_yaml = cfg.to_yaml()
    prepared, models = tmp_path / "prepared", tmp_path / "lm_models"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYPERREC_PSEUDONYM_KEY", "component-test-key")
        data_prep.python_func(config_yaml=config_yaml, pipeline_run=RUN, prepared=_artifact(prepared),
                              report=_artifact(tmp_path / "report.md"))
        fine_tune.python_func(config_yaml=config_yaml, pipeline_run=RUN, prepared=_artifact(prepared),
                              models=_artifact(models))
    return SimpleNamespace(cfg=cfg, config_yaml=config_yaml, prepared=prepared, models=models, tmp=tmp_path)


def _step_metrics(cfg, step: str) -> tuple[str, dict[str, float]]:
    """(run id, metrics) of the one MLflow run of ``step`` in the test's tracking database."""
    from mlflow import MlflowClient

    client = MlflowClient(cfg.mlflow_uri())
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{STEP_TAG}` = '{step}'")
    assert len(runs) == 1, [r.data.tags for r in runs]
    return runs[0].info.run_id, runs[0].data.metrics


def test_fine_tune_body_trains_and_saves_each_model_of_modeling_train(trained) -> None:
    assert [p.name for p in trained.models.iterdir()] == ["next_item_lm"]
    saved = trained.models / "next_item_lm"
    assert {p.name for p in saved.iterdir()} == {"model.json", "segments.json", "weights.safetensors"}
    config = json.loads((saved / "model.json").read_text())
    assert config["model"] == "next_item_lm" and config["n_items"] == 60
    assert config["settings"]["d_model"] == 16 and config["settings"]["max_seq_len"] == 8
    result = config["train_result"]
    assert result["epochs_run"] == EPOCHS and len(result["history"]) == EPOCHS
    assert result["best_metric"] == max(entry["val_ndcg@10"] for entry in result["history"])
    _, metrics = _step_metrics(trained.cfg, "fine_tune")
    assert metrics["next_item_lm.fit_seconds"] > 0
    assert metrics["next_item_lm.val_ndcg_at_10"] == pytest.approx(result["history"][-1]["val_ndcg@10"])


def test_export_body_writes_a_verified_bundle_of_modeling_serve(trained) -> None:
    bundle = trained.tmp / "bundle"
    export.python_func(config_yaml=trained.config_yaml, pipeline_run=RUN,
                       prepared=_artifact(trained.prepared), models=_artifact(trained.models),
                       bundle=_artifact(bundle))
    manifest = verify_bundle(bundle)  # every file against its sha256 in manifest.json
    assert manifest["model_name"] == "ranker" and manifest["version"] == RUN and manifest["n_items"] == 60
    assert (bundle / "triton" / "ranker" / "1" / "model.onnx").stat().st_size > 0
    assert (bundle / "triton" / "ranker" / "config.pbtxt").read_text().strip()
    lineage = manifest["lineage"]
    assert lineage["model"] == "next_item_lm" and lineage["pipeline_run"] == RUN
    assert lineage["onnx_vs_torch_max_abs_diff"] <= 1e-4
    run_id, metrics = _step_metrics(trained.cfg, "export")
    assert lineage["training_run_id"] == run_id
    assert metrics["onnx_vs_torch_max_abs_diff"] == pytest.approx(lineage["onnx_vs_torch_max_abs_diff"])
