"""The registry → object store → model server path, with the real parts on each joint:

MLflow (sqlite registry, S3 artifact store) on a ``moto`` S3 server on 127.0.0.1 holds a registered bundle;
``hyperrec deploy NAME@ALIAS --dry-run`` writes the InferenceService; KServe's own storage code
(``kserve_storage.Storage``, what the storage-initializer image runs) downloads the two URIs taken from that
body; the embedded transformer and predictor start from the download and answer a recommendation.

kserve-storage pins google-cloud-storage<3, which the project's lock cannot take, so it runs in a venv of its
own (``make test`` builds ``.cache/kserve-storage-venv``; ``HYPERREC_KSERVE_STORAGE_PYTHON`` names another),
in a child process, as the storage initializer runs in a container of its own on a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from moto_s3 import moto_s3

from hyperrec.cli import main
from hyperrec.deploy.model_config import instance_kinds
from hyperrec.online.settings import ServingConfig
from hyperrec.registry import BundleRegistry, GateDecision, verify_bundle_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "hyperrec-models"
NAME = "hyperrec-ranker"
DOWNLOAD = "import sys; from kserve_storage import Storage; Storage.download(sys.argv[1], sys.argv[2])"


def kserve_storage_python() -> Path:
    configured = os.environ.get("HYPERREC_KSERVE_STORAGE_PYTHON", ".cache/kserve-storage-venv/bin/python")
    path = Path(configured) if Path(configured).is_absolute() else REPO_ROOT / configured
    check = subprocess.run([str(path), "-c", "import kserve_storage"], capture_output=True, check=False) \
        if path.exists() else None
    if check is None or check.returncode != 0:
        pytest.skip(
            f"kserve-storage is not installed at {path}: run `make test` (it builds that venv) or "
            "`python -m venv .cache/kserve-storage-venv && .cache/kserve-storage-venv/bin/pip install "
            "kserve-storage==0.21.0`"
        )
    return path


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server on 127.0.0.1 and the AWS variables MLflow, boto3 and kserve-storage read."""
    with moto_s3([BUCKET]) as env:
        yield env


def test_a_bundle_registered_in_s3_is_served_from_the_uris_hyperrec_deploy_wrote(s3_env, tmp_path, capsys):
    from hyperrec.export.tiny import build_demo_bundle
    from hyperrec.serving.local import LocalServers

    storage_python = kserve_storage_python()
    # 1. register a real bundle in MLflow with an S3 artifact store, and make it the champion
    build_demo_bundle(tmp_path / "bundle", n_items=50, max_history=6, dynamo=False)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = BundleRegistry(tracking_uri, experiment="e2e", artifact_location=f"s3://{BUCKET}/mlflow")
    decision = GateDecision(passed=True, metric="full.ndcg@10", challenger="ranker", challenger_value=0.1,
                            best_baseline="popularity", best_baseline_value=0.05, champion_value=None,
                            margin=0.05, min_improvement=0.0)
    info = registry.register_bundle(tmp_path / "bundle", registered_name=NAME, decision=decision,
                                    training_run_id=None, pipeline_run="e2e")
    registry.promote(NAME, info.version)
    assert info.source.startswith(f"s3://{BUCKET}/mlflow/")

    # 2. hyperrec deploy --dry-run writes the InferenceService (the CPU pool: no GPU here)
    assert main(["deploy", f"{NAME}@champion", "--dry-run", "--output", "json", "--set",
                 f"tracking.tracking_uri={tracking_uri}", "--set", "deploy.node_pool=cpu"]) == 0
    body = json.loads(capsys.readouterr().out)
    root_uri = body["spec"]["transformer"]["storageUris"][0]["uri"]
    triton_uri = body["spec"]["predictor"]["model"]["storageUri"]
    assert root_uri == f"{info.source}/" and triton_uri == f"{info.source}/triton"

    # 3. KServe's storage code downloads each URI, as the storage initializer does for each component
    downloads = {"transformer": tmp_path / "mnt-transformer", "predictor": tmp_path / "mnt-predictor"}
    for role, uri in (("transformer", root_uri), ("predictor", triton_uri)):
        done = subprocess.run([str(storage_python), "-c", DOWNLOAD, uri, str(downloads[role])],
                              capture_output=True, text=True, env={**os.environ}, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    expected_files = json.loads(registry.version(NAME, info.version).tags["hyperrec.bundle.files"])
    verify_bundle_dir(downloads["transformer"], expected_files=expected_files)
    triton_files = sorted(p.relative_to(downloads["predictor"]).as_posix()
                          for p in downloads["predictor"].rglob("*") if p.is_file())
    assert triton_files == sorted(name.removeprefix("triton/") for name in expected_files
                                  if name.startswith("triton/"))
    for name in triton_files:  # Triton's repository is byte for byte the registered one
        assert (downloads["predictor"] / name).read_bytes() == (
            downloads["transformer"] / "triton" / name
        ).read_bytes()
    assert body["spec"]["predictor"]["model"]["args"] == ["--model-config-name=cpu"]
    assert instance_kinds(downloads["predictor"] / "ranker/configs/cpu.pbtxt") == ["KIND_CPU"]

    # 4. the embedded transformer and predictor start from the download and answer a recommendation
    settings = ServingConfig(predictor_http_port=0, predictor_grpc_port=0, transformer_http_port=0,
                             feedback_dir=tmp_path / "feedback", load_in_background=False)
    servers = LocalServers(downloads["transformer"], settings, env={"HYPERREC_PSEUDONYM_KEY": "e2e-key"},
                           log_dir=tmp_path / "logs", startup_timeout_s=120)
    with servers as endpoints, httpx.Client(timeout=30) as client:
        response = client.post(
            endpoints.recommend_url, json={"user_id": "alice", "history": ["m00001", "m00002"], "k": 5}
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["source"] == "model" and answer["degraded"] is False
    assert answer["model"] == {"name": "ranker", "version": "demo-1"}
    assert len(answer["recommendations"]) == 5
