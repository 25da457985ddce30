"""The fine-tuning PyTorchJob: valid against the published Training Operator CRD schema, and the same entry
point as the fine_tune component.

No PyTorchJob CRD is in the shared CRD folder, so its schema is vendored: tests/deploy/schemas/
kubeflow.org_pytorchjobs.v1.schema.json is ``openAPIV3Schema`` of kubeflow/training-operator's
manifests/base/crds/kubeflow.org_pytorchjobs.yaml (its ``$comment`` names the commit), descriptions removed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from deploy_crd_schema import CrdValidator

from hyperrec.config import HyperrecConfig
from hyperrec.modeling.pytorchjob import pytorchjob_body

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schemas" / "kubeflow.org_pytorchjobs.v1.schema.json"
MANIFEST = HERE.parents[1] / "manifests" / "training" / "pytorchjob.yaml"


@pytest.fixture(scope="module")
def validator() -> CrdValidator:
    vendored = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert "kubeflow/training-operator" in vendored["$comment"]
    return CrdValidator(vendored["group"], vendored["version"], vendored["kind"], vendored["openAPIV3Schema"])


def test_the_committed_manifest_is_the_generated_body_and_valid(validator: CrdValidator) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert manifest == pytorchjob_body(HyperrecConfig())
    assert validator.errors(manifest) == []


def test_bodies_for_other_shapes_and_gpu_settings_are_valid(validator: CrdValidator) -> None:
    cfg = HyperrecConfig.model_validate(
        {"cluster": {"gpu": {"accelerator_limit": 8, "node_selector_value": "h100"}}}
    )
    body = pytorchjob_body(cfg, workers=3, name="tune-big")
    assert validator.errors(body) == []
    assert (
        body["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3 and body["spec"]["nprocPerNode"] == "8"
    )
    assert "Worker" not in pytorchjob_body(cfg, workers=0)["spec"]["pytorchReplicaSpecs"]


def test_every_replica_runs_hyperrec_fine_tune_under_torchrun() -> None:
    body = pytorchjob_body(HyperrecConfig(), workers=2)
    for spec in body["spec"]["pytorchReplicaSpecs"].values():
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "pytorch"  # the container name the operator looks for
        assert container["command"][:4] == ["torchrun", "-m", "hyperrec.cli", "fine-tune"]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_the_schema_rejects_what_the_operator_would(validator: CrdValidator) -> None:
    body = pytorchjob_body(HyperrecConfig())
    misspelt = copy.deepcopy(body)
    misspelt["spec"]["pytorchReplicaSpec"] = misspelt["spec"].pop("pytorchReplicaSpecs")
    assert any("pytorchReplicaSpec" in problem for problem in validator.errors(misspelt))
    wrong_type = copy.deepcopy(body)
    wrong_type["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    assert any("replicas" in problem for problem in validator.errors(wrong_type))
