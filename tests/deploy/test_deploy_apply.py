"""Manifests vs CRD schemas: every body `hyperrec deploy` sends, from a real MLflow registry, is accepted by
an API that validates it against the published KServe CRD (FakeKubernetesApi), and lands as intended: created
at 100%, then patched into a canary, with what an earlier deploy set and the new one does not removed."""

from __future__ import annotations

import copy
import json

import pytest
from deploy_registry import NAME
from fake_kubernetes import FakeKubernetesApi, api_error, merge
from kubernetes.client.exceptions import ApiTypeError

from hyperrec.config import load_config
from hyperrec.deploy.apply import apply_inference_service, merge_patch, with_last_applied
from hyperrec.deploy.body import LAST_APPLIED, with_canary
from hyperrec.deploy.service import deploy, deploy_registered, plan_deployment
from hyperrec.deploy.source import DeployError

BUCKET = "s3://hyperrec-models/"
RAW = ["deploy.mode=RawDeployment", "deploy.predictor.scale_metric=cpu", "deploy.predictor.scale_target=80",
       "deploy.transformer.scale_metric=memory", "deploy.transformer.scale_target=75"]
VARIANTS = {
    "gpu-serverless": [],
    "cpu-serverless": ["deploy.node_pool=cpu"],
    "gpu-raw": RAW,
    "cpu-raw": [*RAW, "deploy.node_pool=cpu"],
}
KEY = ("serving.kserve.io/v1beta1", "inferenceservices", "hyperrec", "hyperrec")


def config(deploy_registry, *overrides: str):
    """The registry's config, with its local artifact root mapped to the bucket the cluster reads."""
    registry, artifact_root = deploy_registry
    storage_map = json.dumps({f"{artifact_root}/": BUCKET})
    return load_config(overrides=[f"tracking.tracking_uri={registry.tracking_uri}",
                                  f"deploy.storage_map={storage_map}", *overrides], environ={})


def without_bookkeeping(obj: dict) -> dict:
    """The object minus what the API server adds (resourceVersion, uid, generation)."""
    obj = copy.deepcopy(obj)
    for key in ("resourceVersion", "uid", "generation"):
        obj["metadata"].pop(key)
    return obj


@pytest.mark.parametrize("variant", VARIANTS)
def test_first_deploy_creates_the_body_and_a_second_starts_a_canary_every_body_valid(
        variant, deploy_registry, fake_kubernetes, inference_service_validator):
    registry, _ = deploy_registry
    cfg = config(deploy_registry, *VARIANTS[variant])
    first = deploy(cfg, f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    planned = plan_deployment(cfg, f"{NAME}@champion", registry).body
    assert (first.action, first.version, first.traffic_percent) == ("created", "1", 100)
    assert first.sent == with_last_applied(planned)
    assert inference_service_validator.errors(first.sent) == []
    assert planned["spec"]["transformer"]["storageUris"][0]["uri"].startswith(BUCKET)
    assert without_bookkeeping(fake_kubernetes.objects[KEY]) == first.sent

    second = deploy(cfg, f"{NAME}@challenger", api=fake_kubernetes, registry=registry)
    desired = plan_deployment(cfg, f"{NAME}@challenger", registry).body
    stored = without_bookkeeping(fake_kubernetes.objects[KEY])
    if cfg.deploy.mode == "Serverless":
        assert (second.action, second.version, second.traffic_percent) == ("canary", "2", 10)
        assert stored == with_last_applied(with_canary(desired, 10))
    else:  # no traffic split in RawDeployment: a rolling update
        assert (second.action, second.version, second.traffic_percent) == ("rolled-out", "2", 100)
        assert stored == with_last_applied(desired)
    assert inference_service_validator.errors(stored) == []
    assert [call for call, _ in fake_kubernetes.calls] == ["create", "patch"]


def test_the_canary_patch_is_exactly_the_new_body_with_the_share_and_no_removals(
    deploy_registry, fake_kubernetes
):
    registry, _ = deploy_registry
    cfg = config(deploy_registry)
    deploy(cfg, f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    second = deploy(cfg, f"{NAME}@challenger", api=fake_kubernetes, registry=registry)
    desired = with_last_applied(with_canary(plan_deployment(cfg, f"{NAME}@challenger", registry).body, 10))
    assert second.sent == desired  # same keys as last time: nothing to remove, so the patch is the body
    assert second.sent["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert second.sent["spec"]["transformer"]["canaryTrafficPercent"] == 10
    assert second.sent["metadata"]["annotations"]["hyperrec.io/model-version"] == "2"


def test_moving_to_the_cpu_pool_removes_the_gpu_fields_the_last_deploy_set(deploy_registry, fake_kubernetes):
    registry, _ = deploy_registry
    deploy(config(deploy_registry), f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    cpu = config(deploy_registry, "deploy.node_pool=cpu")
    result = deploy(cpu, f"{NAME}@challenger", api=fake_kubernetes, registry=registry)
    predictor_patch = result.sent["spec"]["predictor"]
    assert predictor_patch["nodeSelector"] is None and predictor_patch["tolerations"] is None
    assert predictor_patch["model"]["resources"]["limits"]["nvidia.com/gpu"] is None
    stored = without_bookkeeping(fake_kubernetes.objects[KEY])
    assert stored == with_last_applied(
        with_canary(plan_deployment(cpu, f"{NAME}@challenger", registry).body, 10)
    )
    assert stored["spec"]["predictor"]["model"]["args"] == ["--model-config-name=cpu"]


def test_deploying_the_bundle_already_served_sends_nothing(deploy_registry, fake_kubernetes):
    registry, _ = deploy_registry
    cfg = config(deploy_registry)
    deploy(cfg, f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    again = deploy(cfg, f"{NAME}/1", api=fake_kubernetes, registry=registry)
    assert (again.action, again.sent) == ("unchanged", None)
    assert [call for call, _ in fake_kubernetes.calls] == ["create"]
    assert again.summary() == "inferenceservice hyperrec/hyperrec already serves v1; nothing sent"


def test_fields_set_by_others_survive_the_patch(deploy_registry, fake_kubernetes):
    """KServe's defaults (or a person's edit) are not in the last-applied body, so the patch leaves them."""
    registry, _ = deploy_registry
    cfg = config(deploy_registry)
    deploy(cfg, f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    fake_kubernetes.objects[KEY]["spec"]["predictor"]["timeout"] = 60
    deploy(cfg, f"{NAME}@challenger", api=fake_kubernetes, registry=registry)
    assert fake_kubernetes.objects[KEY]["spec"]["predictor"]["timeout"] == 60


def test_the_namespace_flag_reaches_the_body_and_the_url(deploy_registry, fake_kubernetes):
    registry, _ = deploy_registry
    result = deploy(config(deploy_registry, "deploy.namespace=staging", "deploy.service_name=ranker"),
                    f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    assert (result.namespace, result.name) == ("staging", "ranker")
    assert ("serving.kserve.io/v1beta1", "inferenceservices", "staging", "ranker") in fake_kubernetes.objects


def test_an_api_refusal_is_one_clear_deploy_error(deploy_registry, fake_kubernetes):
    registry, _ = deploy_registry
    with pytest.raises(DeployError, match=r"refused inferenceservice hyperrec/Hyperrec: 422 .*metadata.name"):
        deploy(
            config(deploy_registry, "deploy.service_name=Hyperrec"),
            f"{NAME}@champion",
            api=fake_kubernetes,
            registry=registry,
        )


def test_a_local_artifact_path_is_not_sent_to_a_cluster(deploy_registry, fake_kubernetes):
    registry, _ = deploy_registry
    cfg = load_config(overrides=[f"tracking.tracking_uri={registry.tracking_uri}"], environ={})
    with pytest.raises(DeployError, match="local path .* cluster's storage initializer cannot read"):
        deploy(cfg, f"{NAME}@champion", api=fake_kubernetes, registry=registry)
    assert fake_kubernetes.calls == []


def test_the_pipeline_step_deploys_the_exact_registered_version_or_nothing(deploy_registry, fake_kubernetes,
                                                                           monkeypatch):
    registry, _ = deploy_registry
    cfg = config(deploy_registry, "deploy.enabled=true")
    nothing = deploy_registered(cfg, json.dumps({"registered": None}), api=fake_kubernetes)
    assert nothing == {"deployed": False, "reason": "the gate registered no version"}
    registration = json.dumps({"registered": {"name": NAME, "version": "2"}})
    off = deploy_registered(config(deploy_registry), registration, api=fake_kubernetes)
    assert off == {"deployed": False, "reason": "deploy.enabled is false in this run's config"}
    assert fake_kubernetes.calls == []
    done = deploy_registered(cfg, registration, api=fake_kubernetes)
    assert done == {"deployed": True, "reference": f"{NAME}/2", "action": "created", "namespace": "hyperrec",
                    "name": "hyperrec", "version": "2", "traffic_percent": 100}


def test_the_deploy_component_returns_the_step_result_and_skips_without_a_registered_version():
    from hyperrec.components.deploy import deploy as component

    cfg = load_config(overrides=["deploy.enabled=true"], environ={})
    out = component.python_func(config_yaml=cfg.to_json(), registration=json.dumps({"registered": None}))
    assert json.loads(out) == {"deployed": False, "reason": "the gate registered no version"}
    assert set(component.component_spec.inputs) == {"config_yaml", "registration"}


# ------------------------------------------------------------------------------- the fake rejects as the API
# does


def test_the_fake_rejects_what_the_api_server_rejects(fake_kubernetes, deploy_registry):
    registry, _ = deploy_registry
    body = plan_deployment(config(deploy_registry), f"{NAME}@champion", registry).body
    args = ("serving.kserve.io", "v1beta1", "hyperrec", "inferenceservices")

    def status(call, *call_args, **kwargs) -> int:
        with pytest.raises(Exception) as caught:
            call(*call_args, **kwargs)
        return caught.value.status

    typo = copy.deepcopy(body)
    typo["spec"]["predictor"]["model"]["storageURI"] = typo["spec"]["predictor"]["model"].pop("storageUri")
    assert status(fake_kubernetes.create_namespaced_custom_object, *args, typo) == 422
    wrong_type = copy.deepcopy(body)
    wrong_type["spec"]["predictor"]["minReplicas"] = "one"
    assert status(fake_kubernetes.create_namespaced_custom_object, *args, wrong_type) == 422
    no_predictor = copy.deepcopy(body)
    del no_predictor["spec"]["predictor"]
    assert status(fake_kubernetes.create_namespaced_custom_object, *args, no_predictor) == 422
    numeric_annotation = copy.deepcopy(body)
    numeric_annotation["metadata"]["annotations"]["hyperrec.io/model-version"] = 1
    assert status(fake_kubernetes.create_namespaced_custom_object, *args, numeric_annotation) == 422
    elsewhere = {**body, "metadata": {**body["metadata"], "namespace": "other"}}
    assert status(fake_kubernetes.create_namespaced_custom_object, *args, elsewhere) == 400
    assert status(fake_kubernetes.patch_namespaced_custom_object, *args, "hyperrec", {"spec": {}}) == 404
    fake_kubernetes.create_namespaced_custom_object(*args, body)
    assert status(fake_kubernetes.create_namespaced_custom_object, *args, body) == 409
    bad_patch = {"spec": {"predictor": {"canaryTrafficPercent": "ten"}}}
    assert status(fake_kubernetes.patch_namespaced_custom_object, *args, "hyperrec", bad_patch) == 422
    with pytest.raises(ApiTypeError):
        fake_kubernetes.patch_namespaced_custom_object(
            *args, "hyperrec", {}, _content_type="application/json"
        )


def test_the_real_client_sends_a_custom_object_patch_as_a_json_merge_patch():
    """What the fake assumes of kubernetes' CustomObjectsApi: the content type, and no _content_type kwarg."""
    from kubernetes import client

    api_client = client.ApiClient()
    sent = {}
    api_client.call_api = lambda path, method, path_params, query, headers, **kwargs: sent.update(
        method=method, headers=headers, body=kwargs.get("body"))
    api = client.CustomObjectsApi(api_client)
    api.patch_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", "ns", "inferenceservices", "x", {"a": 1}
    )
    assert sent["method"] == "PATCH" and sent["body"] == {"a": 1}
    assert sent["headers"]["Content-Type"] == "application/merge-patch+json"
    with pytest.raises(ApiTypeError):
        api.patch_namespaced_custom_object("g", "v", "ns", "p", "x", {}, _content_type="application/json")


def test_merge_patch_applied_as_rfc7386_turns_the_last_body_into_the_new_one():
    previous = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    desired = {"a": {"c": [3]}, "e": {"f": 2}}
    patch = merge_patch(previous, desired)
    assert patch == {"a": {"c": [3], "b": None}, "e": {"f": 2}, "d": None}
    assert merge(previous, patch) == desired


def test_last_applied_holds_the_body_without_itself():
    body = {"metadata": {"name": "x", "annotations": {"k": "v"}}, "spec": {}}
    stored = json.loads(with_last_applied(body)["metadata"]["annotations"][LAST_APPLIED])
    assert stored == body


def test_apply_reports_an_unexpected_status_of_the_existence_check(deploy_registry):
    class Forbidden(FakeKubernetesApi):
        def get_namespaced_custom_object(self, *args):
            raise api_error(403, "Forbidden", "inferenceservices is forbidden: User cannot get resource")

    registry, _ = deploy_registry
    cfg = config(deploy_registry)
    body = plan_deployment(cfg, f"{NAME}@champion", registry).body
    with pytest.raises(DeployError, match="403 Forbidden: inferenceservices is forbidden"):
        apply_inference_service(Forbidden({}, {"inferenceservices": "InferenceService"}), body, cfg.deploy)
