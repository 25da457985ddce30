"""Registered bundles for the deployment tests: a real tiny bundle in a real MLflow registry (sqlite +
files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hyperrec.registry import BundleRegistry, GateDecision, VersionInfo

NAME = "hyperrec-ranker"


def passing_decision(challenger: str = "ranker") -> GateDecision:
    """A gate decision that lets ``register_bundle`` register (the gate itself is tested in
    tests/unit/registry)."""
    return GateDecision(
        passed=True,
        metric="full.ndcg@10",
        challenger=challenger,
        challenger_value=0.1,
        best_baseline="popularity",
        best_baseline_value=0.05,
        champion_value=None,
        margin=0.05,
        min_improvement=0.0,
    )


def register(registry: BundleRegistry, bundle: Path, pipeline_run: str, name: str = NAME) -> VersionInfo:
    return registry.register_bundle(bundle, registered_name=name, decision=passing_decision(),
                                    training_run_id=None, pipeline_run=pipeline_run)


def build_tiny_bundle(out: Path, version: str = "1") -> Path:
    """A complete bundle (ONNX ranker, Triton configs for GPU and CPU) of 20 items."""
    from hyperrec.export.tiny import build_demo_bundle

    build_demo_bundle(out, n_items=20, max_history=4, dynamo=False, with_embeddings=False, version=version)
    return out


def rewrite_bundle_file(root: Path, relative: str, text: str) -> None:
    """Replace one file of a bundle and its sha256 in manifest.json (a consistent, differently-built
    bundle)."""
    (root / relative).write_text(text, encoding="utf-8")
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][relative] = hashlib.sha256((root / relative).read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
