"""The InferenceService body `hyperrec deploy` builds, field for field, and its agreement with the base
manifest."""

from __future__ import annotations

import copy

import pytest
import yaml
from deploy_render import MANIFESTS, manifests_of, render_chart

from hyperrec.config import load_config
from hyperrec.deploy.body import inference_service, with_canary
from hyperrec.deploy.source import RegisteredBundle

ROOT = "s3://hyperrec-models/1/0123abcd/artifacts/bundle"
RAW = ["deploy.mode=RawDeployment", "deploy.predictor.scale_metric=cpu", "deploy.predictor.scale_target=80",
       "deploy.transformer.scale_metric=cpu", "deploy.transformer.scale_target=70"]


def bundle(root: str = ROOT) -> RegisteredBundle:
    return RegisteredBundle(name="hyperrec-ranker", version="3", alias="champion", source=root,
                            root_uri=f"{root}/", triton_uri=f"{root}/triton", model_name="ranker", files={})


def body_for(*overrides: str, root: str = ROOT) -> dict:
    cfg = load_config(overrides=list(overrides), environ={})
    return inference_service(cfg.deploy, cfg.cluster, bundle(root))


def security(uid: int) -> dict:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


EXPECTED_GPU_SERVERLESS = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "hyperrec",
        "namespace": "hyperrec",
        "labels": {
            "app.kubernetes.io/name": "hyperrec",
            "app.kubernetes.io/instance": "hyperrec",
            "app.kubernetes.io/part-of": "hyperrec",
            "app.kubernetes.io/managed-by": "hyperrec-deploy",
        },
        "annotations": {
            "serving.kserve.io/deploymentMode": "Serverless",
            "serving.kserve.io/enable-prometheus-scraping": "true",
            "serving.kserve.io/enable-metric-aggregation": "true",
            "hyperrec.io/registered-model": "hyperrec-ranker",
            "hyperrec.io/model-version": "3",
            "hyperrec.io/model-reference": "hyperrec-ranker@champion",
            "hyperrec.io/bundle-uri": f"{ROOT}/",
        },
    },
    "spec": {
        "predictor": {
            "serviceAccountName": "hyperrec-serving",
            "minReplicas": 1,
            "maxReplicas": 3,
            "scaleMetric": "concurrency",
            "scaleTarget": 16,
            "annotations": {
                "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/target-utilization-percentage": "70",
                "autoscaling.knative.dev/window": "120s",
                "autoscaling.knative.dev/scale-down-delay": "5m",
            },
            "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "model": {
                "modelFormat": {"name": "onnx"},
                "runtime": "kserve-tritonserver",
                "protocolVersion": "grpc-v2",
                "storageUri": f"{ROOT}/triton",
                "ports": [{"name": "h2c", "containerPort": 9000, "protocol": "TCP"}],
                "resources": {
                    "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
                    "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
                },
                "securityContext": security(1000),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            },
        },
        "transformer": {
            "serviceAccountName": "hyperrec-serving",
            "minReplicas": 1,
            "maxReplicas": 4,
            "scaleMetric": "concurrency",
            "scaleTarget": 32,
            "annotations": {
                "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/target-utilization-percentage": "70",
                "autoscaling.knative.dev/window": "60s",
                "autoscaling.knative.dev/scale-down-delay": "1m",
            },
            "storageUris": [{"uri": f"{ROOT}/", "mountPath": "/mnt/models"}],
            "volumes": [
                {"name": "config", "configMap": {"name": "hyperrec-config"}},
                {"name": "feedback", "persistentVolumeClaim": {"claimName": "hyperrec-feedback"}},
                {"name": "tmp", "emptyDir": {}},
            ],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "ghcr.io/hyperrec/hyperrec-serving:0.1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-m", "hyperrec.serving"],
                    "args": [
                        "transformer",
                        "--predictor_protocol",
                        "grpc-v2",
                        "--config",
                        "/etc/hyperrec/config.yaml",
                    ],
                    "env": [
                        {
                            "name": "HYPERREC_PSEUDONYM_KEY",
                            "valueFrom": {"secretKeyRef": {"name": "hyperrec-pseudonym-key", "key": "key"}},
                        },
                        {"name": "HOME", "value": "/tmp"},
                    ],
                    "ports": [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}],
                    "readinessProbe": {
                        "httpGet": {"path": "/v2/health/ready", "port": 8080},
                        "periodSeconds": 10,
                    },
                    "resources": {
                        "requests": {"cpu": "1", "memory": "2Gi"},
                        "limits": {"cpu": "2", "memory": "2Gi"},
                    },
                    "securityContext": security(10001),
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/hyperrec", "readOnly": True},
                        {"name": "feedback", "mountPath": "/var/lib/hyperrec/feedback"},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
        },
    },
}


def test_first_deploy_on_the_gpu_pool_in_serverless_mode_is_exactly_this_body():
    assert body_for() == EXPECTED_GPU_SERVERLESS


def test_the_cpu_pool_drops_every_gpu_field_and_tells_triton_to_load_the_cpu_config():
    expected = copy.deepcopy(EXPECTED_GPU_SERVERLESS)
    predictor = expected["spec"]["predictor"]
    del predictor["nodeSelector"], predictor["tolerations"]
    for block in predictor["model"]["resources"].values():
        del block["nvidia.com/gpu"]
    model = {**predictor["model"]}
    predictor["model"] = {
        key: model[key] for key in ("modelFormat", "runtime", "protocolVersion", "storageUri")
    }
    predictor["model"]["args"] = ["--model-config-name=cpu"]
    predictor["model"].update(
        {key: model[key] for key in ("ports", "resources", "securityContext", "volumeMounts")}
    )
    assert body_for("deploy.node_pool=cpu") == expected


def test_raw_deployment_asks_kserve_for_an_hpa_with_the_configured_metric_and_no_knative_annotations():
    body = body_for(*RAW)
    expected = copy.deepcopy(EXPECTED_GPU_SERVERLESS)
    expected["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"
    expected["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = "hpa"
    for role, target in (("predictor", 80), ("transformer", 70)):
        del expected["spec"][role]["annotations"]
        expected["spec"][role].update({"scaleMetric": "cpu", "scaleTarget": target})
    assert body == expected
    assert not any(key.startswith("autoscaling.knative.dev/") for key in yaml.safe_dump(body).split())


def test_autoscaling_and_resources_come_from_the_config():
    body = body_for("deploy.predictor.min_replicas=0", "deploy.predictor.max_replicas=9",
                    "deploy.predictor.scale_metric=rps", "deploy.predictor.scale_target=200",
                    "deploy.predictor.resources.memory_limit=16Gi", "deploy.gpus=2",
                    "deploy.transformer.max_replicas=12", "cluster.gpu.node_selector_value=nvidia-h100-80gb")
    predictor, transformer = body["spec"]["predictor"], body["spec"]["transformer"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 9)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("rps", 200)
    assert predictor["model"]["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"}
    assert predictor["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert transformer["maxReplicas"] == 12


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["deploy.mode=RawDeployment"], "does not work in RawDeployment mode"),
        (["deploy.predictor.scale_metric=cpu"], "does not work in Serverless mode"),
        (
            ["deploy.predictor.min_replicas=5", "deploy.predictor.max_replicas=2"],
            "max_replicas must be >= min_replicas",
        ),
        ([*RAW, "deploy.transformer.min_replicas=0"], "min_replicas must be >= 1 in RawDeployment"),
        (["deploy.canary_traffic_percent=101"], "canary_traffic_percent"),
    ],
)
def test_settings_that_no_autoscaler_could_honour_are_refused_with_the_field_named(overrides, message):
    from hyperrec.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides, environ={})


def test_a_pvc_bundle_points_the_transformer_into_the_mounted_claim():
    body = body_for(root="pvc://mlflow-artifacts/1/abc/artifacts/bundle")
    transformer = body["spec"]["transformer"]
    assert transformer["storageUris"] == [{"uri": "pvc://mlflow-artifacts/1/abc/artifacts/bundle/",
                                           "mountPath": "/mnt/models"}]
    assert transformer["containers"][0]["args"][-2:] == ["--bundle", "/mnt/models/1/abc/artifacts/bundle"]
    assert body["spec"]["predictor"]["model"]["storageUri"] == "pvc://mlflow-artifacts/1/abc/artifacts/bundle/triton"


def test_canary_sets_the_same_share_on_both_components_and_changes_nothing_else():
    body = body_for()
    canary = with_canary(body, 25)
    assert canary["spec"]["predictor"] == {**body["spec"]["predictor"], "canaryTrafficPercent": 25}
    assert canary["spec"]["transformer"] == {**body["spec"]["transformer"], "canaryTrafficPercent": 25}
    assert canary["metadata"] == body["metadata"]


def test_the_default_body_serves_like_the_hand_written_base_manifest():
    """Same pods as manifests/base/inferenceservice.yaml; only what the registry and config decide differs."""
    manifest = yaml.safe_load((MANIFESTS / "base" / "inferenceservice.yaml").read_text())
    body = body_for()
    for role in ("predictor", "transformer"):
        ours, theirs = copy.deepcopy(body["spec"][role]), copy.deepcopy(manifest["spec"][role])
        if role == "predictor":
            ours["model"].pop("storageUri"), theirs["model"].pop("storageUri")
        else:
            ours.pop("storageUris"), theirs.pop("storageUris")
            # the transformer runs in the slim serving image (cluster.serving_image)
            ours["containers"][0].pop("image"), theirs["containers"][0].pop("image")
        assert ours == theirs, role
    assert {k: v for k, v in manifest["metadata"]["annotations"].items()} == {
        k: v for k, v in body["metadata"]["annotations"].items() if k.startswith("serving.kserve.io/")}


def test_a_chart_installed_without_its_inference_service_holds_everything_the_deploy_body_refers_to(helm):
    """`helm install --set inferenceService.create=false` leaves the InferenceService to `hyperrec deploy`:
    the chart renders none, asks for no storageUri, and names what the body mounts and runs as."""
    objects = manifests_of(render_chart(helm, {"inferenceService": {"create": False}}, "hyperrec"))
    assert not [o for o in objects if o["kind"] == "InferenceService"]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    body = body_for()
    volumes = body["spec"]["transformer"]["volumes"]
    assert ("ConfigMap", next(v["configMap"]["name"] for v in volumes if "configMap" in v)) in names
    assert (
        "PersistentVolumeClaim",
        next(v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v),
    ) in names
    for role in ("predictor", "transformer"):
        assert ("ServiceAccount", body["spec"][role]["serviceAccountName"]) in names
