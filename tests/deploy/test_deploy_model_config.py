"""Model config vs node pool: the Triton config the predictor is told to load exists in the registered bundle
(read back from the artifact store) and asks for the pool's device kind; and the `hyperrec deploy` command
line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from deploy_registry import NAME, build_tiny_bundle, register, rewrite_bundle_file

from hyperrec.cli import main
from hyperrec.config import load_config
from hyperrec.deploy.model_config import check_model_config, config_path, instance_kinds
from hyperrec.deploy.service import plan_deployment
from hyperrec.deploy.source import DeployError, cluster_uri, parse_reference, resolve_bundle
from hyperrec.registry import BundleRegistry


@pytest.fixture
def registry(tmp_path: Path) -> BundleRegistry:
    return BundleRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}",
                          artifact_location=(tmp_path / "mlartifacts").resolve().as_uri())


@pytest.mark.parametrize("pool, kind", [("gpu", "KIND_GPU"), ("cpu", "KIND_CPU")])
def test_a_built_bundle_has_the_config_of_each_pool_with_its_device_kind(
    deploy_registry, pool, kind, tmp_path
):
    registry, _ = deploy_registry
    bundle = resolve_bundle(registry, f"{NAME}@champion", {})
    assert check_model_config(bundle, pool, registry.tracking_uri) == config_path("ranker", pool)
    assert instance_kinds(build_tiny_bundle(tmp_path / "b") / config_path("ranker", pool)) == [kind]


def test_a_cpu_config_that_asks_for_gpus_is_refused_naming_the_file(registry, tmp_path):
    root = build_tiny_bundle(tmp_path / "bundle")
    cpu = root / "triton/ranker/configs/cpu.pbtxt"
    rewrite_bundle_file(
        root, "triton/ranker/configs/cpu.pbtxt", cpu.read_text().replace("KIND_CPU", "KIND_GPU")
    )
    register(registry, root, "run-gpu-in-cpu")
    bundle = resolve_bundle(registry, f"{NAME}@challenger", {})
    with pytest.raises(
        DeployError,
        match=r"triton/ranker/configs/cpu.pbtxt: instance groups \['KIND_GPU'\] do not "
        r"match the cpu node pool \(needs KIND_CPU only\)",
    ):
        check_model_config(bundle, "cpu", registry.tracking_uri)
    assert check_model_config(bundle, "gpu", registry.tracking_uri) == "triton/ranker/config.pbtxt"


def test_a_bundle_without_the_cpu_config_cannot_go_to_the_cpu_pool(registry, tmp_path):
    root = build_tiny_bundle(tmp_path / "bundle")
    (root / "triton/ranker/configs/cpu.pbtxt").unlink()
    (root / "triton/ranker/configs").rmdir()
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["files"]["triton/ranker/configs/cpu.pbtxt"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    register(registry, root, "run-no-cpu")
    cfg = load_config(overrides=[f"tracking.tracking_uri={registry.tracking_uri}", "deploy.node_pool=cpu"],
                      environ={})
    with pytest.raises(DeployError, match="configs/cpu.pbtxt: not in the bundle, so Triton on the cpu pool"):
        plan_deployment(cfg, f"{NAME}@challenger", registry)


def test_a_config_changed_in_the_store_after_registration_is_refused(registry, tmp_path):
    info = register(registry, build_tiny_bundle(tmp_path / "bundle"), "run-tampered")
    stored = Path(cluster_uri(info.source, {})) / "triton/ranker/config.pbtxt"
    stored.write_text(stored.read_text().replace("count: 1", "count: 2"))
    bundle = resolve_bundle(registry, f"{NAME}/{info.version}", {})
    with pytest.raises(
        DeployError, match="config.pbtxt: sha256 differs from the one recorded at registration"
    ):
        check_model_config(bundle, "gpu", registry.tracking_uri)


def test_a_version_whose_bundle_is_gone_from_the_store_is_refused(registry, tmp_path):
    import shutil

    info = register(registry, build_tiny_bundle(tmp_path / "bundle"), "run-gone")
    shutil.rmtree(cluster_uri(info.source, {}))
    with pytest.raises(DeployError, match="bundle at .* lacks manifest.json, triton"):
        resolve_bundle(registry, f"{NAME}/{info.version}", {})


@pytest.mark.parametrize("reference, message", [
    ("hyperrec-ranker", "expected NAME@ALIAS"),
    ("hyperrec-ranker@", "expected NAME@ALIAS"),
    ("a@b@c", "expected NAME@ALIAS"),
])
def test_malformed_references_are_refused(reference, message):
    with pytest.raises(DeployError, match=message):
        parse_reference(reference)


def test_references_name_an_alias_or_an_exact_version():
    assert parse_reference("hyperrec-ranker@champion") == ("hyperrec-ranker", "champion", None)
    assert parse_reference("hyperrec-ranker/12") == ("hyperrec-ranker", None, "12")


@pytest.mark.parametrize("source, mapping, expected", [
    ("s3://b/1/r/artifacts/bundle", {}, "s3://b/1/r/artifacts/bundle"),
    ("gs://b/x/bundle", {}, "gs://b/x/bundle"),
    ("file:///srv/ml%20artifacts/1/bundle", {}, "/srv/ml artifacts/1/bundle"),
    ("/mnt/mlflow/1/r/artifacts/bundle", {"/mnt/mlflow/": "pvc://mlflow-artifacts/"},
     "pvc://mlflow-artifacts/1/r/artifacts/bundle"),
    ("file:///mnt/mlflow/1/bundle", {"file:///mnt/": "s3://x/", "file:///mnt/mlflow/": "pvc://ml/"},
     "pvc://ml/1/bundle"),
])
def test_artifact_uris_become_what_the_storage_initializer_reads(source, mapping, expected):
    assert cluster_uri(source, mapping) == expected


@pytest.mark.parametrize("source", ["mlflow-artifacts:/1/r/artifacts/bundle", "runs:/abc/bundle", "ftp://x/y"])
def test_uris_the_storage_initializer_cannot_read_are_refused(source):
    with pytest.raises(DeployError, match="cannot read"):
        cluster_uri(source, {})


# ------------------------------------------------------------------------------------------------ CLI


def test_dry_run_prints_exactly_the_planned_body(deploy_registry, capsys):
    registry, artifact_root = deploy_registry
    sets = ["--set", f"tracking.tracking_uri={registry.tracking_uri}", "--set", "deploy.node_pool=cpu"]
    assert main(["deploy", f"{NAME}@champion", "--dry-run", "--namespace", "staging", *sets]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    cfg = load_config(overrides=[sets[1], sets[3], "deploy.namespace=staging"], environ={})
    assert printed == plan_deployment(cfg, f"{NAME}@champion", registry).body
    assert printed["metadata"]["namespace"] == "staging"
    assert printed["spec"]["transformer"]["storageUris"][0]["uri"].startswith(str(Path(artifact_root[7:])))
    assert main(["deploy", f"{NAME}@champion", "--dry-run", "--output", "json", *sets]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["predictor"]["model"]["args"] == [
        "--model-config-name=cpu"
    ]


@pytest.mark.parametrize("reference, message", [
    ("no-alias", "expected NAME@ALIAS"),
    (f"{NAME}@nope", f"registered model '{NAME}' has no alias 'nope'"),
    (f"{NAME}/99", f"registered model '{NAME}' has no version 99"),
])
def test_bad_references_are_one_line_and_exit_2(deploy_registry, reference, message, capsys):
    registry, _ = deploy_registry
    code = main(["deploy", reference, "--dry-run", "--set", f"tracking.tracking_uri={registry.tracking_uri}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_without_kubernetes_credentials_deploy_says_so_in_one_line(
    deploy_registry, tmp_path, monkeypatch, capsys
):
    registry, artifact_root = deploy_registry
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    storage_map = json.dumps({f"{artifact_root}/": "s3://hyperrec-models/"})
    code = main(["deploy", f"{NAME}@champion", "--set", f"tracking.tracking_uri={registry.tracking_uri}",
                 "--set", f"deploy.storage_map={storage_map}"])
    errors = [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]
    assert code == 2 and len(errors) == 1
    assert errors[0].endswith("ERROR hyperrec: no Kubernetes credentials (in-cluster or kubeconfig): "
                              "Invalid kube-config file. No configuration found.")
