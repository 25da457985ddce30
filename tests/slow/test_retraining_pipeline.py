"""The retraining pipeline, embedded on real MovieLens windows: drift starts retraining, no drift does not."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from hyperrec.config import load_config
from hyperrec.pipelines.runner import run_retraining_local

pytestmark = [pytest.mark.slow, pytest.mark.local]

REPO = Path(__file__).resolve().parents[2]
DATASET = Path(os.environ.get("HYPERREC_DATASET_DIR", REPO.parent / "shared/datasets/ml-latest-small"))
RECENT = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp())
EARLY = int(datetime(2004, 1, 1, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    if not (DATASET / "ratings.csv").exists():
        pytest.skip(f"MovieLens not found at {DATASET} (set HYPERREC_DATASET_DIR); no download in tests")
    tmp = tmp_path_factory.mktemp("windows")
    ratings = pd.read_csv(DATASET / "ratings.csv")
    paths = {}
    for name, frame in {
        "early": ratings[ratings["timestamp"] < EARLY],
        "recent": ratings[ratings["timestamp"] >= RECENT],
        "recent_half_a": ratings[(ratings["timestamp"] >= RECENT) & (ratings["userId"] % 2 == 0)],
        "recent_half_b": ratings[(ratings["timestamp"] >= RECENT) & (ratings["userId"] % 2 == 1)],
    }.items():
        paths[name] = tmp / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def _config(tmp_path: Path):
    # These tests check which steps run and what window data prep keeps, nothing about model quality: one
    # short epoch of a fixed number of steps is enough, and no wall-clock budget (max_train_seconds=null), so
    # the work done does not depend on the machine's load.
    return load_config(
        overrides=[
            f"data.dataset_dir={DATASET}",
            "data.download=false",
            f"output_dir={tmp_path / 'out' / 'latest'}",
            "modeling.train=[next_item_lm]",
            "modeling.next_item.training.max_epochs=1",
            "modeling.next_item.training.max_steps_per_epoch=20",
            "modeling.next_item.training.max_train_seconds=null",
            f"modeling.item_encoder.cache_dir={tmp_path / 'embeddings'}",
            "monitoring.drift.disabled_checks=[item_embeddings, profile_embeddings]",
        ],
        environ={},
    )


def _steps(cfg, pipeline_run: str) -> set[str]:
    import mlflow

    mlflow.set_tracking_uri(cfg.mlflow_uri())
    runs = mlflow.search_runs(experiment_names=[cfg.tracking.experiment],
                              filter_string=f"tags.`hyperrec.pipeline_run` = '{pipeline_run}'")
    return set(runs["tags.hyperrec.step"])


@pytest.mark.timeout(900)  # the drift check alone, on 2 busy cores
def test_no_drift_between_two_halves_of_one_period_starts_no_training(windows, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", "retraining-test-key")
    cfg = _config(tmp_path)
    run = run_retraining_local(cfg, reference_uri=str(windows["recent_half_a"]),
                               current_uri=str(windows["recent_half_b"]))
    assert _steps(cfg, run) == {"drift_monitor"}


# Every step of the pipeline, the catalogue embedded once (about 9,700 items) and 20 training steps, on 2 busy
# cores.
@pytest.mark.timeout(1800)
def test_drift_retrains_on_the_new_window_and_gates_the_challenger(windows, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", "retraining-test-key")
    cfg = _config(tmp_path)
    run = run_retraining_local(
        cfg, reference_uri=str(windows["early"]), current_uri=str(windows["recent"]),
        data_window=json.dumps({"start_unix": RECENT}), trigger_reason="test: early vs recent",
    )
    assert {"drift_monitor", "data_prep", "train_baselines", "fine_tune", "evaluate", "export",
            "validate_and_register"} <= _steps(cfg, run)
    reports = list((cfg.output_dir.parent / "kfp" / run).rglob("data_report.json"))
    window = json.loads(reports[0].read_text())["steps"]["window"]
    assert window["start_unix"] == RECENT and window["outside_window"] > 0
