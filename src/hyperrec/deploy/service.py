"""``hyperrec deploy``'s steps in order: resolve the reference, check the Triton config, build, apply."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from hyperrec.cluster_settings import ClusterConfig
from hyperrec.deploy.apply import CustomObjects, DeployResult, apply_inference_service, kubernetes_api
from hyperrec.deploy.body import inference_service
from hyperrec.deploy.model_config import check_model_config
from hyperrec.deploy.settings import DeployConfig
from hyperrec.deploy.source import DeployError, RegisteredBundle, resolve_bundle
from hyperrec.registry.mlflow_registry import BundleRegistry

logger = logging.getLogger(__name__)


class DeploySettings(Protocol):
    """What deploying reads of ``HyperrecConfig``: its deploy and cluster sections, and the tracking settings
    ``BundleRegistry.from_target`` reads. A protocol, because ``hyperrec.config`` imports this package's
    settings."""

    deploy: DeployConfig
    cluster: ClusterConfig


@dataclass(frozen=True)
class DeployPlan:
    """A resolved, checked bundle and the InferenceService body that serves it."""

    bundle: RegisteredBundle
    checked_config: str
    body: dict[str, Any]


def plan_deployment(
    cfg: DeploySettings, reference: str, registry: BundleRegistry | None = None
) -> DeployPlan:
    """Resolve ``reference`` in the registry, check its Triton config against the node pool, build the
    body."""
    registry = registry or BundleRegistry.from_target(cfg)
    bundle = resolve_bundle(registry, reference, cfg.deploy.storage_map)
    checked = check_model_config(bundle, cfg.deploy.node_pool, registry.tracking_uri)
    return DeployPlan(bundle, checked, inference_service(cfg.deploy, cfg.cluster, bundle))


def deploy(cfg: DeploySettings, reference: str, *, api: CustomObjects | None = None,
           registry: BundleRegistry | None = None) -> DeployResult:
    """Plan, then create or patch the InferenceService (``api``: a CustomObjectsApi; default from
    kubeconfig)."""
    plan = plan_deployment(cfg, reference, registry)
    if plan.bundle.is_local:
        raise DeployError(
            f"{reference} lies at the local path {plan.bundle.root_uri}, which the cluster's storage "
            "initializer cannot read; register it in an object store or map the path with deploy.storage_map"
        )
    result = apply_inference_service(api or kubernetes_api(), plan.body, cfg.deploy)
    logger.info("%s", result.summary())
    return result


def deploy_registered(
    cfg: DeploySettings, registration: str, *, api: CustomObjects | None = None
) -> dict[str, Any]:
    """Deploy the version a ``validate_and_register`` result names; nothing when the gate registered none.

    Returns (JSON-ready) ``{"deployed": false, "reason": ...}`` or ``{"deployed": true, "action", "namespace",
    "name", "version", "traffic_percent", "reference"}``.
    """
    try:
        registered = json.loads(registration).get("registered")
    except (ValueError, AttributeError):
        raise DeployError(
            f"registration is not a validate_and_register result: {registration[:200]!r}"
        ) from None
    if not registered:
        return {"deployed": False, "reason": "the gate registered no version"}
    if not cfg.deploy.enabled:
        return {"deployed": False, "reason": "deploy.enabled is false in this run's config"}
    reference = f"{registered['name']}/{registered['version']}"
    result = deploy(cfg, reference, api=api)
    return {"deployed": True, "reference": reference, "action": result.action, "namespace": result.namespace,
            "name": result.name, "version": result.version, "traffic_percent": result.traffic_percent}
