"""What a canary decision does to the cluster and to the MLflow aliases.

**Serverless** (KServe's own canary): one InferenceService whose latest revision is the challenger; JSON merge
patches of ``canaryTrafficPercent`` on both components (they roll out as a pair, as ``hyperrec deploy`` set
them):

- ramp to ``p`` %: ``{"spec": {"predictor": {"canaryTrafficPercent": p}, "transformer": {…: p}}}``;
- promotion: the field removed (``null``): KServe then routes 100 % to the latest revision and records it as
  the rolled-out one (KServe's documented way to promote a canary); MLflow ``champion`` → the challenger;
- rollback: ``canaryTrafficPercent: 0``: all traffic back on the last rolled-out revision (the champion);
  the ``champion`` alias is left alone, the ``challenger`` alias removed, the version tagged.

**RawDeployment** ignores ``canaryTrafficPercent`` (kserve #5335), and shifting replicas gives only coarse,
HPA-fought shares (1 of 10 pods = 10 %). So: **two InferenceServices behind one route**. The champion stays
``<service>``; the challenger runs as ``<service><challenger_suffix>``; a KServe InferenceGraph
``<service><route_suffix>`` with a ``Splitter`` root node sends each request to one of them by weight:

- start / ramp / rollback: the route's weights ``[100 − p, p]`` (rollback: ``[100, 0]``);
- promotion: the champion's InferenceService is rolled (patched) to the challenger's bundle, then the route
  goes back to ``[100, 0]``; the challenger's InferenceService is then idle and can be deleted.

Before any patch the live InferenceService must serve the challenger version this canary is about
(``hyperrec.io/model-version``), so a stale controller can never move traffic of another rollout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hyperrec.deploy.apply import CustomObjects, apply_inference_service
from hyperrec.deploy.body import GROUP, MODEL_VERSION, PLURAL, VERSION
from hyperrec.deploy.settings import DeployConfig
from hyperrec.deploy.source import DeployError
from hyperrec.experiments.controller import PROMOTE, ROLLBACK, Decision
from hyperrec.experiments.settings import CanaryConfig

logger = logging.getLogger(__name__)

GRAPH_VERSION, GRAPH_PLURAL, GRAPH_KIND = "v1alpha1", "inferencegraphs", "InferenceGraph"
CANARY_DECISION_TAG = "hyperrec.canary.decision"
CANARY_REASON_TAG = "hyperrec.canary.reason"


@dataclass(frozen=True)
class CanaryTarget:
    """The rollout a controller acts on."""

    registered_model: str
    challenger_version: str
    namespace: str
    service_name: str


def traffic_patch(percent: int | None) -> dict[str, Any]:
    """Serverless: both components' ``canaryTrafficPercent`` (None removes it: full promotion)."""
    return {"spec": {"predictor": {"canaryTrafficPercent": percent},
                     "transformer": {"canaryTrafficPercent": percent}}}


def route_body(deploy: DeployConfig, canary: CanaryConfig, percent: int) -> dict[str, Any]:
    """RawDeployment: the InferenceGraph splitting requests champion/challenger as
    ``100 − percent``/``percent``.

    Args:
        deploy: the deploy settings (service name and namespace).
        canary: the canary settings (route and challenger name suffixes).
        percent: the challenger's share of requests, 0-100.

    Returns:
        The InferenceGraph body.
    """
    name = deploy.service_name
    return {
        "apiVersion": f"{GROUP}/{GRAPH_VERSION}",
        "kind": GRAPH_KIND,
        "metadata": {
            "name": f"{name}{canary.route_suffix}",
            "namespace": deploy.namespace,
            "labels": {
                "app.kubernetes.io/name": "hyperrec",
                "app.kubernetes.io/instance": name,
                "app.kubernetes.io/part-of": "hyperrec",
                "app.kubernetes.io/managed-by": "hyperrec-canary",
            },
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {
            "nodes": {
                "root": {
                    "routerType": "Splitter",
                    "steps": [
                        {"name": "champion", "serviceName": name, "weight": 100 - percent},
                        {
                            "name": "challenger",
                            "serviceName": f"{name}{canary.challenger_suffix}",
                            "weight": percent,
                        },
                    ],
                }
            }
        },
    }


def challenger_body(body: dict[str, Any], canary: CanaryConfig) -> dict[str, Any]:
    """RawDeployment: the challenger's InferenceService is its ``hyperrec deploy`` body under its own name."""
    metadata = body["metadata"]
    name = f"{metadata['name']}{canary.challenger_suffix}"
    labels = {**metadata.get("labels", {}), "app.kubernetes.io/instance": name}
    return {**body, "metadata": {**metadata, "name": name, "labels": labels}}


class CanaryActions:
    """Applies decisions of one canary (``api``: a CustomObjectsApi; ``registry``: a BundleRegistry)."""

    def __init__(self, api: CustomObjects, registry: Any, deploy: DeployConfig, canary: CanaryConfig,
                 target: CanaryTarget, *, challenger_isvc: dict[str, Any] | None = None) -> None:
        if deploy.mode == "RawDeployment" and challenger_isvc is None:
            raise ValueError("RawDeployment needs the challenger's InferenceService body")
        self.api, self.registry, self.deploy, self.canary, self.target = api, registry, deploy, canary, target
        self.challenger_isvc = challenger_isvc
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    @property
    def serverless(self) -> bool:
        return self.deploy.mode == "Serverless"

    def start(self, percent: int) -> None:
        """RawDeployment only: create the challenger's InferenceService and the route at ``percent``."""
        if self.serverless:
            raise ValueError("a Serverless canary is started by `hyperrec deploy` (canaryTrafficPercent)")
        assert self.challenger_isvc is not None
        body = challenger_body(self.challenger_isvc, self.canary)
        self._create_or_patch(VERSION, PLURAL, body)
        self._create_or_patch(GRAPH_VERSION, GRAPH_PLURAL, route_body(self.deploy, self.canary, percent))

    def apply(self, decision: Decision) -> None:
        """Move traffic (and on a final decision the aliases) as ``decision`` says; nothing on hold.

        Args:
            decision: the controller's decision for this step.
        """
        if decision.action == PROMOTE:
            final = decision.traffic_after == 100
            self._promote_final() if final else self._set_traffic(decision.traffic_after)
            if final:
                self.registry.promote(self.target.registered_model, self.target.challenger_version)
                self._tag("promoted", decision.reason)
        elif decision.action == ROLLBACK:
            self._set_traffic(0)
            self._retire_challenger_alias()
            self._tag("rolled-back", decision.reason)

    def _set_traffic(self, percent: int) -> None:
        if self.serverless:
            self._patch(VERSION, PLURAL, self.target.service_name, traffic_patch(percent),
                        check_isvc=self.target.service_name)
        else:
            self._patch_route(percent)

    def _promote_final(self) -> None:
        if self.serverless:
            self._patch(VERSION, PLURAL, self.target.service_name, traffic_patch(None),
                        check_isvc=self.target.service_name)
            return
        assert self.challenger_isvc is not None
        result = apply_inference_service(self.api, self.challenger_isvc, self.deploy)
        self.sent.append(("patch", f"{PLURAL}/{self.target.service_name}", result.sent or {}))
        self._patch_route(0)

    def _patch_route(self, percent: int) -> None:
        body = route_body(self.deploy, self.canary, percent)
        self._patch(GRAPH_VERSION, GRAPH_PLURAL, body["metadata"]["name"], {"spec": body["spec"]},
                    check_isvc=f"{self.target.service_name}{self.canary.challenger_suffix}")

    def _patch(self, version: str, plural: str, name: str, body: dict[str, Any], *,
               check_isvc: str | None) -> None:
        from kubernetes.client.exceptions import ApiException

        namespace = self.target.namespace
        try:
            if check_isvc is not None:
                self._check_serves_challenger(check_isvc)
            self.api.patch_namespaced_custom_object(GROUP, version, namespace, plural, name, body)
        except ApiException as exc:
            raise DeployError(f"Kubernetes API refused the patch of {plural} {namespace}/{name}: "
                              f"{exc.status} {exc.reason}") from None
        self.sent.append(("patch", f"{plural}/{name}", body))
        logger.info("patched %s %s/%s: %s", plural, namespace, name, body)

    def _create_or_patch(self, version: str, plural: str, body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        name, namespace = body["metadata"]["name"], self.target.namespace
        try:
            self.api.get_namespaced_custom_object(GROUP, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise DeployError(
                    f"cannot read {plural} {namespace}/{name}: {exc.status} {exc.reason}"
                ) from None
            self.api.create_namespaced_custom_object(GROUP, version, namespace, plural, body)
            self.sent.append(("create", f"{plural}/{name}", body))
            return
        self._patch(version, plural, name, {"metadata": {"labels": body["metadata"]["labels"],
                                                         "annotations": body["metadata"]["annotations"]},
                                            "spec": body["spec"]}, check_isvc=None)

    def _check_serves_challenger(self, name: str) -> None:
        live = self.api.get_namespaced_custom_object(GROUP, VERSION, self.target.namespace, PLURAL, name)
        serving = (live.get("metadata", {}).get("annotations") or {}).get(MODEL_VERSION)
        if serving != self.target.challenger_version:
            raise DeployError(
                f"inferenceservice {self.target.namespace}/{name} serves version {serving}, not the "
                f"canary's challenger v{self.target.challenger_version}; refusing to move traffic"
            )

    def _retire_challenger_alias(self) -> None:
        from hyperrec.registry.mlflow_registry import CHALLENGER

        name = self.target.registered_model
        if self.registry.aliases(name).get(CHALLENGER) == self.target.challenger_version:
            self.registry.client.delete_registered_model_alias(name, CHALLENGER)

    def _tag(self, outcome: str, reason: str) -> None:
        client, name, version = (
            self.registry.client,
            self.target.registered_model,
            self.target.challenger_version,
        )
        client.set_model_version_tag(name, version, CANARY_DECISION_TAG, outcome)
        client.set_model_version_tag(name, version, CANARY_REASON_TAG, reason[:5000])
