"""Fixtures of the registry tests: a real MLflow sqlite store, a tiny bundle folder and a metrics.json.

Creating an MLflow sqlite database runs its migrations (seconds on 2 cores), so one migrated database is
made per session and copied (a plain file copy) wherever a test needs a fresh store.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

BASELINES = ("popularity", "item_knn", "als", "bpr")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # runs the migrations
    return path


@pytest.fixture
def fresh_db(migrated_db: Path):
    """``fresh_db(path)`` copies the migrated database to ``path`` and returns its sqlite URI."""

    def copy(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_db, path)
        return f"sqlite:///{path.resolve()}"

    return copy


@pytest.fixture
def tracking_uri(tmp_path: Path, fresh_db) -> str:
    return fresh_db(tmp_path / "mlflow" / "mlflow.db")


def write_bundle(root: Path, *, model_name: str = "ranker", version: str = "1", seed: bytes = b"",
                 lineage: dict[str, Any] | None = None) -> Path:
    """A bundle folder shaped like hyperrec.export.bundle output, with fake (non-ONNX) file contents."""
    files = {
        f"triton/{model_name}/config.pbtxt": f'name: "{model_name}"\nplatform: "onnxruntime_onnx"\n'.encode(),
        f"triton/{model_name}/configs/cpu.pbtxt": f'name: "{model_name}"\n'.encode(),
        f"triton/{model_name}/1/model.onnx": b"\x08\x07fake-onnx-weights" + seed,
        "items.parquet": b"PAR1 fake catalogue PAR1" + seed,
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    manifest = {
        "format": "hyperrec-serving-bundle/1",
        "model_name": model_name,
        "version": version,
        "n_items": 3,
        "max_history": 8,
        "lineage": lineage if lineage is not None else {"training_run_id": "train-run-1",
                                                         "source": "unit test"},
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


def model_entry(ndcg10: float) -> dict[str, Any]:
    """One model of metrics.json (hyperrec.evaluation.harness schema), every number derived from ndcg@10."""
    block = {"hr@10": 2 * ndcg10, "ndcg@10": ndcg10, "map@10": ndcg10 / 2, "recall@10": 2 * ndcg10,
             "hr@20": 3 * ndcg10, "ndcg@20": 1.2 * ndcg10, "map@20": ndcg10 / 2, "recall@20": 3 * ndcg10,
             "mrr": ndcg10 / 2, "ndcg@10_se": 0.01, "ndcg@20_se": 0.01}
    return {
        "n_users": 610,
        "scoring_seconds": 1.5,
        "full": dict(block),
        "sampled": {**{k: min(1.0, 4 * v) for k, v in block.items()}, "auc": 0.5 + ndcg10},
        "coverage@10": 0.1 + ndcg10,
        "coverage@20": 0.2 + ndcg10,
    }


def make_metrics(values: dict[str, float]) -> dict[str, Any]:
    """A whole metrics.json with one model per ``{name: full ndcg@10}``."""
    return {
        "protocol": {"split": "test", "history_splits": ["train", "validation"], "masked_splits": ["train"],
                     "k_values": [10, 20], "top_n": 100, "sampled_negatives": 100, "tie_breaking": "seeded",
                     "seed": 42, "n_items": 9742, "n_users": 610},
        "split": "test",
        "models": {name: model_entry(value) for name, value in values.items()},
    }


@pytest.fixture
def baseline_values() -> dict[str, float]:
    return {"popularity": 0.02, "item_knn": 0.05, "als": 0.06, "bpr": 0.04}


@pytest.fixture(name="make_metrics")
def make_metrics_fixture():
    """``make_metrics({name: full ndcg@10})`` -> a metrics.json dict."""
    return make_metrics


@pytest.fixture(name="write_bundle")
def write_bundle_fixture():
    """``write_bundle(root, model_name=..., seed=b"...", lineage=...)`` -> a bundle folder."""
    return write_bundle
