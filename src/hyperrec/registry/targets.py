"""One-call registry operations on a target: a HyperrecConfig, a tracking URI or a ``BundleRegistry``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperrec.registry.gate import DEFAULT_METRIC, GateDecision
from hyperrec.registry.mlflow_registry import BundleRegistry, RegistryTarget
from hyperrec.registry.version_tags import VersionInfo


def register_bundle(
    target: RegistryTarget,
    bundle_dir: Path,
    *,
    registered_name: str,
    decision: GateDecision,
    training_run_id: str | None,
    pipeline_run: str,
    **kwargs: Any,
) -> VersionInfo:
    """``BundleRegistry.register_bundle`` on ``target`` (a HyperrecConfig, a tracking URI or a registry).

    Args:
        target: a HyperrecConfig, a tracking URI or a BundleRegistry.
        bundle_dir: the bundle folder.
        registered_name: the registered model that gets the new version.
        decision: the gate's decision.
        training_run_id: the MLflow run that trained the model, or None.
        pipeline_run: the pipeline run id.
        **kwargs: the other keyword arguments of ``BundleRegistry.register_bundle``.

    Returns:
        The new version.
    """
    return BundleRegistry.from_target(target).register_bundle(
        bundle_dir, registered_name=registered_name, decision=decision, training_run_id=training_run_id,
        pipeline_run=pipeline_run, **kwargs,
    )


def promote(target: RegistryTarget, registered_name: str, version: str | int) -> VersionInfo:
    return BundleRegistry.from_target(target).promote(registered_name, version)


def rollback(target: RegistryTarget, registered_name: str) -> VersionInfo:
    return BundleRegistry.from_target(target).rollback(registered_name)


def champion_metric(
    target: RegistryTarget, registered_name: str, metric: str = DEFAULT_METRIC
) -> float | None:
    return BundleRegistry.from_target(target).champion_metric(registered_name, metric)


def download_bundle(target: RegistryTarget, registered_name: str, alias: str, dst: Path, *,
                    overwrite: bool = False) -> Path:
    return BundleRegistry.from_target(target).download_bundle(
        registered_name, alias, dst, overwrite=overwrite
    )
