"""The model registry: a gate on evaluation results, then MLflow Model Registry versions of serving bundles.

- ``gate``: pure comparison of a challenger with every baseline and the champion (no MLflow).
- ``mlflow_registry``: register a bundle folder (sha256-verified), move the challenger / champion /
  previous-champion aliases, roll back, download what serving loads.
- The pipeline step behind the ``validate_and_register`` KFP component is
  ``hyperrec.steps.validate_and_register``.

See docs/REGISTRY.md.
"""

from __future__ import annotations

from hyperrec.hashing import sha256_file
from hyperrec.registry.gate import (
    DEFAULT_METRIC,
    GateDecision,
    GateError,
    canonical_metric,
    decide,
    learned_models,
    metric_value,
    select_challenger,
)
from hyperrec.registry.integrity import (
    BundleIntegrityError,
    RegistryError,
    config_sha256,
    read_bundle_manifest,
    verify_bundle_dir,
)
from hyperrec.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_REGISTERED_NAME,
    PREVIOUS_CHAMPION,
    BundleRegistry,
)
from hyperrec.registry.targets import champion_metric, download_bundle, promote, register_bundle, rollback
from hyperrec.registry.version_tags import VersionInfo

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_METRIC",
    "DEFAULT_REGISTERED_NAME",
    "PREVIOUS_CHAMPION",
    "BundleIntegrityError",
    "BundleRegistry",
    "GateDecision",
    "GateError",
    "RegistryError",
    "VersionInfo",
    "canonical_metric",
    "champion_metric",
    "config_sha256",
    "decide",
    "download_bundle",
    "learned_models",
    "metric_value",
    "promote",
    "read_bundle_manifest",
    "register_bundle",
    "rollback",
    "select_challenger",
    "sha256_file",
    "verify_bundle_dir",
]
