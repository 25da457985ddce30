"""Bundles in a real MLflow registry (sqlite in tmp_path): register, aliases, promote, rollback, download."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from hyperrec.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    BundleIntegrityError,
    BundleRegistry,
    GateDecision,
    RegistryError,
    champion_metric,
    decide,
    download_bundle,
    promote,
    register_bundle,
    rollback,
    verify_bundle_dir,
)

NAME = "hyperrec-ranker"
BASELINES = ["popularity", "item_knn", "als", "bpr"]


@pytest.fixture
def registry(tracking_uri: str) -> BundleRegistry:
    return BundleRegistry(tracking_uri)


def passing(make_metrics, baseline_values, value: float = 0.08, champion: float | None = None) -> tuple:
    metrics = make_metrics({**baseline_values, "next_item_lm": value})
    return decide(metrics, "next_item_lm", BASELINES, champion), metrics


def register(registry, bundle: Path, decision: GateDecision, metrics: dict, pipeline_run: str = "run-1"):
    return registry.register_bundle(
        bundle, registered_name=NAME, decision=decision, training_run_id="train-run-7",
        pipeline_run=pipeline_run, challenger_metrics=metrics["models"][decision.challenger],
        protocol=metrics["protocol"], lineage={"data_report_sha256": "d" * 64, "config_sha256": "c" * 64},
    )


def local_path(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path))


def test_register_logs_the_bundle_creates_a_version_with_lineage_and_points_challenger_at_it(
        registry, bundle_dir, make_metrics, baseline_values, tracking_uri):
    decision, metrics = passing(make_metrics, baseline_values)
    info = register(registry, bundle_dir, decision, metrics)

    assert (info.name, info.version, info.aliases) == (NAME, "1", (CHALLENGER,))
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    # the source is the concrete artifact location of the logged folder, byte-identical to the bundle
    stored = local_path(info.source)
    assert stored.name == "bundle" and verify_bundle_dir(stored) == manifest
    tags = info.tags
    assert json.loads(tags["hyperrec.bundle.files"]) == manifest["files"]
    for name, digest in manifest["files"].items():
        assert tags[f"hyperrec.sha256.{name}"] == digest
    assert tags["hyperrec.pipeline_run"] == "run-1"
    assert tags["hyperrec.training_run_id"] == "train-run-7"
    assert tags["hyperrec.data_report_sha256"] == "d" * 64
    assert tags["hyperrec.config_sha256"] == "c" * 64
    assert len(tags["hyperrec.eval.protocol_sha256"]) == 64
    assert tags["hyperrec.bundle.model_name"] == "ranker"
    assert json.loads(tags["hyperrec.bundle.lineage"])["source"] == "unit test"
    assert tags["hyperrec.gate.passed"] == "true"
    assert float(tags["hyperrec.gate.challenger_value"]) == pytest.approx(0.08)
    assert tags["hyperrec.gate.best_baseline"] == "als"
    assert tags["hyperrec.gate.champion_value"] == "none"
    assert float(tags["hyperrec.metric.full.ndcg_at_10"]) == pytest.approx(0.08)
    assert float(tags["hyperrec.metric.sampled.auc"]) == pytest.approx(0.58)
    assert GateDecision.from_dict(json.loads(tags["hyperrec.gate.decision"])) == decision

    run = registry.client.get_run(info.run_id)
    assert run.data.tags["hyperrec.step"] == "register_bundle"
    assert run.data.tags["hyperrec.training_run_id"] == "train-run-7"
    assert run.data.params["lineage.data_report_sha256"] == "d" * 64
    assert run.info.status == "FINISHED"
    # no champion yet: the first model is only a challenger
    assert champion_metric(tracking_uri, NAME) is None
    assert registry.alias_version(NAME, CHAMPION) is None


def test_register_refuses_a_failed_gate_and_a_bundle_that_does_not_match_its_manifest(
        registry, bundle_dir, make_metrics, baseline_values):
    decision, metrics = passing(make_metrics, baseline_values, value=0.01)
    assert not decision.passed
    with pytest.raises(RegistryError, match="gate did not pass"):
        register(registry, bundle_dir, decision, metrics)

    decision, metrics = passing(make_metrics, baseline_values)
    (bundle_dir / "items.parquet").write_bytes(b"changed")
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch: items.parquet"):
        register(registry, bundle_dir, decision, metrics)
    (bundle_dir / "stray.txt").write_text("x")
    with pytest.raises(BundleIntegrityError, match="not in manifest: stray.txt"):
        register(registry, bundle_dir, decision, metrics)
    assert registry.aliases(NAME) == {}  # nothing was registered


def test_promote_keeps_previous_champion_and_rollback_restores_it(
        registry, tmp_path, write_bundle, make_metrics, baseline_values, tracking_uri):
    first, metrics1 = passing(make_metrics, baseline_values, value=0.07)
    v1 = register(registry, write_bundle(tmp_path / "b1", seed=b"1"), first, metrics1)
    champion = promote(tracking_uri, NAME, v1.version)
    assert champion.aliases == (CHAMPION,)  # the challenger alias moved away with the promotion
    assert registry.aliases(NAME) == {CHAMPION: "1"}
    assert champion_metric(tracking_uri, NAME, "full.ndcg@10") == pytest.approx(0.07)
    assert champion_metric(tracking_uri, NAME, "sampled.auc") == pytest.approx(0.57)
    assert promote(registry, NAME, "1").version == "1"  # promoting the champion again is a no-op

    second, metrics2 = passing(make_metrics, baseline_values, value=0.09, champion=0.07)
    v2 = register(registry, write_bundle(tmp_path / "b2", seed=b"2"), second, metrics2)
    assert registry.aliases(NAME) == {CHAMPION: "1", CHALLENGER: "2"}
    promote(registry, NAME, v2.version)
    assert registry.aliases(NAME) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    assert champion_metric(registry, NAME) == pytest.approx(0.09)

    restored = rollback(tracking_uri, NAME)
    assert restored.version == "1"
    assert registry.aliases(NAME) == {CHAMPION: "1"}  # v1 replaced nobody: nothing further back
    assert registry.version(NAME, "2").tags["hyperrec.rolled_back_to"] == "1"
    assert champion_metric(registry, NAME) == pytest.approx(0.07)
    with pytest.raises(RegistryError, match="no previous-champion"):
        rollback(registry, NAME)


def test_rollback_walks_back_down_the_chain_of_promotions(
        registry, tmp_path, write_bundle, make_metrics, baseline_values):
    for index, value in enumerate((0.07, 0.08, 0.09), start=1):
        decision, metrics = passing(make_metrics, baseline_values, value=value)
        info = register(
            registry, write_bundle(tmp_path / f"b{index}", seed=bytes([index])), decision, metrics
        )
        registry.promote(NAME, info.version)
    assert registry.aliases(NAME) == {CHAMPION: "3", PREVIOUS_CHAMPION: "2"}
    assert registry.rollback(NAME).version == "2"
    assert registry.aliases(NAME) == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    assert registry.rollback(NAME).version == "1"
    assert registry.aliases(NAME) == {CHAMPION: "1"}


def test_alias_operations_fail_clearly(registry, tracking_uri):
    assert champion_metric(tracking_uri, "no-such-model") is None
    with pytest.raises(RegistryError, match="no champion to roll back"):
        rollback(tracking_uri, "no-such-model")
    with pytest.raises(RegistryError, match="has no version 7"):
        promote(tracking_uri, "no-such-model", 7)
    with pytest.raises(RegistryError, match="has no alias 'champion'"):
        download_bundle(tracking_uri, "no-such-model", CHAMPION, Path("unused"))


def test_champion_without_the_gate_metric_is_an_error(registry, bundle_dir, make_metrics, baseline_values):
    decision, metrics = passing(make_metrics, baseline_values)
    info = register(registry, bundle_dir, decision, metrics)
    registry.promote(NAME, info.version)
    with pytest.raises(RegistryError, match="no recorded 'full.ndcg@50'"):
        registry.champion_metric(NAME, "full.ndcg@50")


def test_download_returns_the_registered_bundle_and_detects_tampering(
        registry, bundle_dir, make_metrics, baseline_values, tmp_path):
    decision, metrics = passing(make_metrics, baseline_values)
    info = register(registry, bundle_dir, decision, metrics)
    registry.promote(NAME, info.version)

    dst = download_bundle(registry, NAME, CHAMPION, tmp_path / "serving" / "bundle")
    assert verify_bundle_dir(dst) == json.loads((bundle_dir / "manifest.json").read_text())
    assert (dst / "triton/ranker/1/model.onnx").read_bytes() == (
        bundle_dir / "triton/ranker/1/model.onnx"
    ).read_bytes()
    with pytest.raises(RegistryError, match="not empty"):
        download_bundle(registry, NAME, CHAMPION, dst)
    assert download_bundle(registry, NAME, CHAMPION, dst, overwrite=True) == dst

    stored = local_path(info.source)
    onnx = stored / "triton/ranker/1/model.onnx"
    original = onnx.read_bytes()
    onnx.write_bytes(original + b"backdoor")
    target = tmp_path / "serving" / "tampered"
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch: triton/ranker/1/model.onnx"):
        download_bundle(registry, NAME, CHAMPION, target)
    assert not target.exists()  # nothing unverified is left where serving would look
    assert [p.name for p in target.parent.iterdir()] == ["bundle"]  # and no staging leftovers

    # rewriting the manifest to match the tampered file is caught by the sha256s the registry recorded
    manifest = json.loads((stored / "manifest.json").read_text())
    manifest["files"]["triton/ranker/1/model.onnx"] = hashlib.sha256(onnx.read_bytes()).hexdigest()
    (stored / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="differs from the registered file list"):
        download_bundle(registry, NAME, CHAMPION, target)

    onnx.write_bytes(original)
    (stored / "manifest.json").write_bytes((bundle_dir / "manifest.json").read_bytes())
    restored = download_bundle(registry, NAME, CHAMPION, target)
    assert verify_bundle_dir(restored) == json.loads((bundle_dir / "manifest.json").read_text())


def test_register_through_a_config_uses_its_experiment_and_keeps_artifacts_beside_the_database(
        tmp_path, fresh_db, bundle_dir, make_metrics, baseline_values):
    from hyperrec.config import load_config

    cfg = load_config(environ={}, overrides=[f"output_dir={tmp_path / 'outputs' / 'latest'}",
                                             "tracking.experiment=registry-test"])
    fresh_db(tmp_path / "outputs" / "mlflow.db")
    decision, _ = passing(make_metrics, baseline_values)
    info = register_bundle(cfg, bundle_dir, registered_name=NAME, decision=decision, training_run_id=None,
                           pipeline_run="p")
    assert local_path(info.source).is_relative_to((tmp_path / "outputs" / "mlartifacts").resolve())
    assert info.tags["hyperrec.training_run_id"] == "train-run-1"  # from the manifest's lineage
    assert info.tags["hyperrec.data_report_sha256"] == "unknown"
    registry = BundleRegistry.from_target(cfg)
    assert registry.client.get_experiment(registry.client.get_run(info.run_id).info.experiment_id).name == \
        "registry-test"


def test_serve_resolves_a_registered_alias_to_a_verified_local_bundle(
        tmp_path, fresh_db, bundle_dir, make_metrics, baseline_values):
    import argparse

    from hyperrec.serving.cli import _resolve_bundle

    out = tmp_path / "outputs" / "latest"
    fresh_db(tmp_path / "outputs" / "mlflow.db")
    overrides = [f"output_dir={out}", "tracking.experiment=registry-test"]
    from hyperrec.config import load_config

    decision, _ = passing(make_metrics, baseline_values)
    register_bundle(load_config(environ={}, overrides=overrides), bundle_dir, registered_name=NAME,
                    decision=decision, training_run_id=None, pipeline_run="p")
    args = argparse.Namespace(registered=f"{NAME}@challenger", demo=False, bundle=None, config=None,
                              overrides=overrides)
    served = _resolve_bundle(args, None, tmp_path / "work")
    assert verify_bundle_dir(served) == json.loads((bundle_dir / "manifest.json").read_text())
    args.registered = f"{NAME}@no-such-alias"
    with pytest.raises(RegistryError, match="no-such-alias"):
        _resolve_bundle(args, None, tmp_path / "work2")


def test_bundle_files_needs_the_files_tag_as_json_and_the_named_tag() -> None:
    from hyperrec.registry.version_tags import FILES_TAG, MANIFEST_SHA_TAG, MODEL_NAME_TAG, VersionInfo

    tags = {FILES_TAG: '{"manifest.json": "00"}', MODEL_NAME_TAG: "ranker"}
    info = VersionInfo(name="m", version="1", source="s", run_id=None, tags=tags)
    assert info.bundle_files(MODEL_NAME_TAG) == ({"manifest.json": "00"}, "ranker")
    assert info.bundle_files(MANIFEST_SHA_TAG) is None
    broken = VersionInfo(name="m", version="1", source="s", run_id=None, tags={**tags, FILES_TAG: "{"})
    assert broken.bundle_files(MODEL_NAME_TAG) is None
