"""Canary decisions on the cluster: every InferenceService / InferenceGraph body the controller sends,
asserted exactly and validated against the published KServe CRDs (FakeKubernetesApi), and the MLflow aliases
after it."""

from __future__ import annotations

import json

import pytest
from deploy_registry import NAME, build_tiny_bundle, register
from fake_kubernetes import FakeKubernetesApi

from hyperrec.config import load_config
from hyperrec.deploy.service import deploy, plan_deployment
from hyperrec.deploy.source import DeployError
from hyperrec.experiments.actions import CanaryActions, CanaryTarget, challenger_body, route_body
from hyperrec.experiments.controller import HOLD, PROMOTE, ROLLBACK, Decision
from hyperrec.registry import BundleRegistry

BUCKET = "s3://hyperrec-models/"
RAW = ["deploy.mode=RawDeployment", "deploy.predictor.scale_metric=cpu", "deploy.predictor.scale_target=80",
       "deploy.transformer.scale_metric=memory", "deploy.transformer.scale_target=75"]
ISVC = ("serving.kserve.io/v1beta1", "inferenceservices", "hyperrec", "hyperrec")
ROUTE = ("serving.kserve.io/v1alpha1", "inferencegraphs", "hyperrec", "hyperrec-route")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("canary-bundles")
    return build_tiny_bundle(tmp / "bundle-1", "1"), build_tiny_bundle(tmp / "bundle-2", "2")


@pytest.fixture
def registry(bundles, tmp_path):
    """A fresh registry per test (decisions move its aliases): v1 champion, v2 challenger."""
    artifacts = (tmp_path / "mlartifacts").resolve()
    registry = BundleRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=artifacts.as_uri())
    registry.promote(NAME, register(registry, bundles[0], "run-1").version)
    register(registry, bundles[1], "run-2")
    return registry


@pytest.fixture
def api(crd_validators):
    return FakeKubernetesApi(crd_validators, {"inferenceservices": "InferenceService",
                                              "inferencegraphs": "InferenceGraph"})


def config(registry, *overrides):
    storage_map = json.dumps({registry.artifact_location + "/": BUCKET})
    return load_config(overrides=[f"tracking.tracking_uri={registry.tracking_uri}",
                                  f"deploy.storage_map={storage_map}", *overrides], environ={})


def decision(action: str, before: int, after: int) -> Decision:
    return Decision(
        step=1,
        action=action,
        traffic_before=before,
        traffic_after=after,
        reason=f"test {action}",
        evidence={},
        test={},
        guardrails={},
    )


def actions_for(cfg, api, registry, body=None) -> CanaryActions:
    target = CanaryTarget(NAME, "2", cfg.deploy.namespace, cfg.deploy.service_name)
    return CanaryActions(api, registry, cfg.deploy, cfg.canary, target, challenger_isvc=body)


def serverless_canary(cfg, api, registry) -> None:
    """What `hyperrec deploy` leaves: v1 created, then v2 patched in as a 10 % canary."""
    deploy(cfg, f"{NAME}@champion", api=api, registry=registry)
    assert deploy(cfg, f"{NAME}@challenger", api=api, registry=registry).action == "canary"
    api.calls.clear()


def test_serverless_ramp_and_promotion_send_exactly_these_patches(api, registry):
    cfg = config(registry)
    serverless_canary(cfg, api, registry)
    actions = actions_for(cfg, api, registry)
    actions.apply(decision(HOLD, 10, 10))
    actions.apply(decision(PROMOTE, 10, 50))
    assert api.objects[ISVC]["spec"]["predictor"]["canaryTrafficPercent"] == 50
    actions.apply(decision(PROMOTE, 50, 100))
    assert api.calls == [
        (
            "patch",
            {
                "spec": {
                    "predictor": {"canaryTrafficPercent": 50},
                    "transformer": {"canaryTrafficPercent": 50},
                }
            },
        ),
        (
            "patch",
            {
                "spec": {
                    "predictor": {"canaryTrafficPercent": None},
                    "transformer": {"canaryTrafficPercent": None},
                }
            },
        ),
    ]
    live = api.objects[ISVC]
    assert "canaryTrafficPercent" not in live["spec"]["predictor"]
    assert "canaryTrafficPercent" not in live["spec"]["transformer"]
    assert live["metadata"]["annotations"]["hyperrec.io/model-version"] == "2"
    assert registry.aliases(NAME) == {"champion": "2", "previous-champion": "1"}
    assert registry.version(NAME, "2").tags["hyperrec.canary.decision"] == "promoted"


def test_serverless_rollback_sends_canary_zero_and_keeps_the_champion(api, registry):
    cfg = config(registry)
    serverless_canary(cfg, api, registry)
    actions_for(cfg, api, registry).apply(decision(ROLLBACK, 10, 0))
    assert api.calls == [
        (
            "patch",
            {"spec": {"predictor": {"canaryTrafficPercent": 0}, "transformer": {"canaryTrafficPercent": 0}}},
        ),
    ]
    assert api.objects[ISVC]["spec"]["transformer"]["canaryTrafficPercent"] == 0
    assert registry.aliases(NAME) == {"champion": "1"}
    tags = registry.version(NAME, "2").tags
    assert (
        tags["hyperrec.canary.decision"] == "rolled-back"
        and tags["hyperrec.canary.reason"] == "test rollback"
    )


def test_traffic_of_another_version_is_never_moved(api, registry):
    cfg = config(registry)
    deploy(cfg, f"{NAME}@champion", api=api, registry=registry)  # v1 only: no canary of v2 running
    with pytest.raises(DeployError, match="serves version 1, not the canary's challenger v2"):
        actions_for(cfg, api, registry).apply(decision(ROLLBACK, 10, 0))
    assert [verb for verb, _ in api.calls] == ["create"]
    assert registry.aliases(NAME)["challenger"] == "2"


def test_the_api_rejects_a_percent_the_crd_forbids(api, registry):
    cfg = config(registry)
    serverless_canary(cfg, api, registry)
    actions = actions_for(cfg, api, registry)
    with pytest.raises(DeployError, match="422"):
        actions._set_traffic("fifty")  # the CRD says integer: the fake refuses as the API server would


def test_raw_deployment_two_services_behind_one_route(api, registry):
    cfg = config(registry, *RAW)
    deploy(cfg, f"{NAME}@champion", api=api, registry=registry)
    body = plan_deployment(cfg, f"{NAME}@challenger", registry).body
    actions = actions_for(cfg, api, registry, body)
    api.calls.clear()
    actions.start(10)
    route = route_body(cfg.deploy, cfg.canary, 10)
    assert api.calls == [("create", challenger_body(body, cfg.canary)), ("create", route)]
    assert route["spec"] == {"nodes": {"root": {"routerType": "Splitter", "steps": [
        {"name": "champion", "serviceName": "hyperrec", "weight": 90},
        {"name": "challenger", "serviceName": "hyperrec-challenger", "weight": 10}]}}}
    api.calls.clear()
    actions.apply(decision(PROMOTE, 10, 50))
    assert api.calls == [("patch", {"spec": {"nodes": {"root": {"routerType": "Splitter", "steps": [
        {"name": "champion", "serviceName": "hyperrec", "weight": 50},
        {"name": "challenger", "serviceName": "hyperrec-challenger", "weight": 50}]}}}})]
    api.calls.clear()
    actions.apply(decision(PROMOTE, 50, 100))
    (verb, isvc_patch), route_patch = api.calls
    assert verb == "patch" and isvc_patch["metadata"]["annotations"]["hyperrec.io/model-version"] == "2"
    assert "canaryTrafficPercent" not in json.dumps(isvc_patch)  # RawDeployment: a rolling update
    assert route_patch == ("patch", {"spec": route_body(cfg.deploy, cfg.canary, 0)["spec"]})
    assert api.objects[ISVC]["metadata"]["annotations"]["hyperrec.io/model-version"] == "2"
    assert api.objects[ROUTE]["spec"]["nodes"]["root"]["steps"][0]["weight"] == 100
    assert registry.aliases(NAME) == {"champion": "2", "previous-champion": "1"}


def test_raw_deployment_rollback_puts_all_weight_on_the_champion(api, registry):
    cfg = config(registry, *RAW)
    deploy(cfg, f"{NAME}@champion", api=api, registry=registry)
    actions = actions_for(cfg, api, registry, plan_deployment(cfg, f"{NAME}@challenger", registry).body)
    actions.start(10)
    api.calls.clear()
    actions.apply(decision(ROLLBACK, 10, 0))
    assert api.calls == [("patch", {"spec": route_body(cfg.deploy, cfg.canary, 0)["spec"]})]
    assert api.objects[ISVC]["metadata"]["annotations"]["hyperrec.io/model-version"] == "1"
    assert registry.aliases(NAME) == {"champion": "1"}
