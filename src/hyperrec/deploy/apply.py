"""Create or patch the InferenceService through the Kubernetes API (``CustomObjectsApi``).

Why ``CustomObjectsApi`` and not the kserve SDK's ``KServeClient``: ``KServeClient.create``/``patch`` call the
same ``CustomObjectsApi`` methods but want generated model objects rather than the plain body that
``--dry-run`` prints, turn every ``ApiException`` into a ``RuntimeError`` (so "not found" and "already exists"
cannot be told apart), and leave the patch content type to the client's guess. Here the body sent is exactly
the dict that was built and tested, and the patch is a JSON merge patch (RFC 7386), the content type the
kubernetes client sends for every custom-object patch.

- Absent: create it; the first version serves 100% of the traffic.
- Present: merge-patch it to the new body with ``canaryTrafficPercent`` on both components (Serverless), so
  the new revisions start as a canary; promotion or rollback is someone else's decision. RawDeployment has no
  traffic split: the patch is a rolling update.
- Fields that the last ``hyperrec deploy`` set and the new body no longer has (e.g. the GPU node selector
  after a switch to the cpu pool) are removed with ``null``, as ``kubectl apply`` does with its last-applied
  annotation; fields set by others (KServe's defaults) are left alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from hyperrec.deploy.body import BUNDLE_URI, GROUP, LAST_APPLIED, MODEL_VERSION, PLURAL, VERSION, with_canary
from hyperrec.deploy.settings import DeployConfig
from hyperrec.deploy.source import DeployError

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class CustomObjects(Protocol):
    """The part of ``kubernetes.client.CustomObjectsApi`` a deployment uses."""

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                     name: str) -> dict[str, Any]: ...

    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any]) -> dict[str, Any]: ...

    def patch_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str,
                                       body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DeployResult:
    """What was done: ``created`` (100%), ``canary`` (new version at ``traffic_percent``), ``rolled-out``
    (RawDeployment patch), or ``unchanged`` (the service already serves this bundle; nothing sent)."""

    action: str
    namespace: str
    name: str
    version: str
    traffic_percent: int
    sent: dict[str, Any] | None

    def summary(self) -> str:
        where = f"inferenceservice {self.namespace}/{self.name}"
        if self.action == "unchanged":
            return f"{where} already serves v{self.version}; nothing sent"
        return f"{where} {self.action}: v{self.version} gets {self.traffic_percent}% of the traffic"


def kubernetes_api() -> CustomObjects:
    """A ``CustomObjectsApi`` from the in-cluster service account, else from the kubeconfig.

    Returns:
        The client for custom objects.

    Raises:
        DeployError: neither in-cluster nor kubeconfig credentials can be loaded.
    """
    import os

    from kubernetes import client, config

    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except (config.ConfigException, OSError) as exc:
        raise DeployError(f"no Kubernetes credentials (in-cluster or kubeconfig): {exc}") from None
    return client.CustomObjectsApi()


def merge_patch(previous: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """An RFC 7386 patch that sets everything in ``desired`` and removes what only ``previous`` had."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        old = previous.get(key)
        patch[key] = merge_patch(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    for key in previous.keys() - desired.keys():
        patch[key] = None
    return patch


def with_last_applied(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` carrying itself (compact JSON) in the last-applied annotation, for the next patch's
    removals."""
    metadata = body["metadata"]
    annotations = {**metadata.get("annotations", {}), LAST_APPLIED: json.dumps(body, sort_keys=True,
                                                                                separators=(",", ":"))}
    return {**body, "metadata": {**metadata, "annotations": annotations}}


def apply_inference_service(api: CustomObjects, body: dict[str, Any], deploy: DeployConfig) -> DeployResult:
    """Create the InferenceService, or patch the existing one so the new bundle starts as a canary.

    Args:
        api: the Kubernetes custom-objects client.
        body: the full InferenceService body, as from ``inference_service``.
        deploy: the deploy settings (mode and canary traffic percent).

    Returns:
        What was done and the object sent (None when nothing was sent).

    Raises:
        DeployError: the Kubernetes API refuses the read, create or patch.
    """
    from kubernetes.client.exceptions import ApiException

    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    version = body["metadata"]["annotations"][MODEL_VERSION]
    try:
        live = _get(api, namespace, name)
        if live is None:
            sent = with_last_applied(body)
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sent)
            return DeployResult("created", namespace, name, version, 100, sent)
        live_annotations = live.get("metadata", {}).get("annotations") or {}
        if live_annotations.get(BUNDLE_URI) == body["metadata"]["annotations"][BUNDLE_URI]:
            return DeployResult("unchanged", namespace, name, version, 100, None)
        if LAST_APPLIED not in live_annotations:
            logger.warning(
                "%s/%s was not created by hyperrec deploy: fields it set are kept", namespace, name
            )
        previous = json.loads(live_annotations.get(LAST_APPLIED, "{}"))
        serverless = deploy.mode == "Serverless"
        desired = with_last_applied(with_canary(body, deploy.canary_traffic_percent) if serverless else body)
        sent = merge_patch(previous, desired)
        # kubernetes' CustomObjectsApi sends every patch of a custom object as MERGE_PATCH.
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, sent)
    except ApiException as exc:
        raise DeployError(f"Kubernetes API refused inferenceservice {namespace}/{name}: {exc.status} "
                          f"{exc.reason}: {_message(exc)}") from None
    if serverless:
        return DeployResult("canary", namespace, name, version, deploy.canary_traffic_percent, sent)
    return DeployResult("rolled-out", namespace, name, version, 100, sent)


def _get(api: CustomObjects, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except (TypeError, ValueError, AttributeError):
        return str(exc.body)
