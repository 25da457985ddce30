"""The InferenceService body for a registered bundle: hyperrec transformer in front of a Triton predictor.

The shape is that of ``manifests/base/inferenceservice.yaml`` (same ports, probes, volumes, security
contexts), with what the hand-written manifest cannot know filled in from the registry and the config:

- ``spec.transformer.storageUris[0].uri`` = the bundle root (``<root>/``), ``spec.predictor.model.storageUri``
  = ``<root>/triton``, both from the registered version's artifact URI;
- the node pool: ``gpu`` adds ``nvidia.com/gpu`` requests and limits, ``cluster.gpu``'s node selector and
  toleration; ``cpu`` adds ``--model-config-name=cpu`` to Triton's args (the bundle's KIND_CPU config);
- autoscaling, as in the manifests: ``minReplicas``/``maxReplicas``/``scaleMetric``/``scaleTarget`` on each
  component. In Serverless mode KServe turns them into the revision's Knative KPA annotations (the fields win
  over annotations of those names), so the body adds only the KPA settings that have no field (class, target
  utilization, window, scale-down delay). RawDeployment mode sets ``serving.kserve.io/autoscalerClass: hpa``,
  from which KServe creates a HorizontalPodAutoscaler per component.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from hyperrec.deploy.model_config import triton_args
from hyperrec.deploy.settings import ComponentScaling, DeployConfig
from hyperrec.deploy.source import RegisteredBundle

GROUP, VERSION, PLURAL, KIND = "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
API_VERSION = f"{GROUP}/{VERSION}"
#: hyperrec's own annotations on the InferenceService (what it serves, and the last body it applied).
REGISTERED_MODEL = "hyperrec.io/registered-model"
MODEL_VERSION = "hyperrec.io/model-version"
MODEL_REFERENCE = "hyperrec.io/model-reference"
BUNDLE_URI = "hyperrec.io/bundle-uri"
LAST_APPLIED = "hyperrec.io/last-applied"
KPA_CLASS = "kpa.autoscaling.knative.dev"
CONFIG_MOUNT = "/etc/hyperrec"
PREDICTOR_USER, TRANSFORMER_USER = 1000, 10001


def security_context(uid: int) -> dict[str, Any]:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities (the manifests'
    policy)."""
    return {
        "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def autoscaling(scaling: ComponentScaling, mode: str) -> dict[str, Any]:
    """Replica bounds and the autoscaler's target (KServe's fields), plus the KPA-only settings in Serverless.

    Args:
        scaling: one component's replica and autoscaler settings.
        mode: the KServe deployment mode, "Serverless" or "RawDeployment".

    Returns:
        The component spec fields to merge in.
    """
    fields: dict[str, Any] = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas,
                              "scaleMetric": scaling.scale_metric, "scaleTarget": scaling.scale_target}
    if mode == "Serverless":
        fields["annotations"] = {
            "autoscaling.knative.dev/class": KPA_CLASS,
            "autoscaling.knative.dev/target-utilization-percentage": str(
                scaling.kpa.target_utilization_percentage
            ),
            "autoscaling.knative.dev/window": scaling.kpa.window,
            "autoscaling.knative.dev/scale-down-delay": scaling.kpa.scale_down_delay,
        }
    return fields


def predictor_spec(deploy: DeployConfig, gpu: Any, bundle: RegisteredBundle) -> dict[str, Any]:
    """Triton (``kserve-tritonserver``) on ``<root>/triton``, on the configured node pool.

    Args:
        deploy: the deploy settings (node pool, GPUs, resources, service account, mode).
        gpu: the cluster's GPU settings (resource name, node selector, toleration).
        bundle: the registered bundle; its ``triton_uri`` is the model's storage URI.

    Returns:
        The InferenceService's ``predictor`` spec.
    """
    resources = deploy.predictor.resources.to_k8s()
    model: dict[str, Any] = {
        "modelFormat": {"name": "onnx"},
        "runtime": "kserve-tritonserver",
        "protocolVersion": "grpc-v2",
        "storageUri": bundle.triton_uri,
    }
    args = triton_args(deploy.node_pool)
    if args:
        model["args"] = args
    spec: dict[str, Any] = {"serviceAccountName": deploy.service_account,
                            **autoscaling(deploy.predictor, deploy.mode)}
    if deploy.node_pool == "gpu":
        for block in resources.values():
            block[gpu.accelerator_type] = str(deploy.gpus)
        spec["nodeSelector"] = {gpu.node_selector_key: gpu.node_selector_value}
        spec["tolerations"] = [{"key": gpu.toleration_key, "operator": "Exists", "effect": "NoSchedule"}]
    model.update({
        # Knative exposes one port; h2c on Triton's gRPC port carries the transformer's grpc-v2 calls.
        "ports": [{"name": "h2c", "containerPort": 9000, "protocol": "TCP"}],
        "resources": resources,
        "securityContext": security_context(PREDICTOR_USER),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    })
    spec["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    spec["model"] = model
    return spec


def transformer_args(deploy: DeployConfig, bundle: RegisteredBundle) -> list[str]:
    """``python -m hyperrec.serving`` args; KServe appends --model_name, --predictor_host and --http_port.

    For a ``pvc://claim/path/`` root KServe mounts the whole claim at the mount path, so the transformer is
    pointed at the bundle's folder inside it.

    Args:
        deploy: the deploy settings (bundle mount path).
        bundle: the registered bundle.

    Returns:
        The container's arguments.
    """
    args = ["transformer", "--predictor_protocol", "grpc-v2", "--config", f"{CONFIG_MOUNT}/config.yaml"]
    parsed = urlparse(bundle.root_uri)
    if parsed.scheme == "pvc" and parsed.path.strip("/"):
        args += ["--bundle", f"{deploy.bundle_mount_path.rstrip('/')}/{parsed.path.strip('/')}"]
    return args


def transformer_spec(deploy: DeployConfig, image: str, bundle: RegisteredBundle) -> dict[str, Any]:
    """The hyperrec transformer, with the bundle root downloaded to ``deploy.bundle_mount_path``.

    Args:
        deploy: the deploy settings (mounts, claims, secret, resources, service account, mode).
        image: the serving container image.
        bundle: the registered bundle; its ``root_uri`` is downloaded.

    Returns:
        The InferenceService's ``transformer`` spec.
    """
    container = {
        "name": "kserve-container",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "hyperrec.serving"],
        "args": transformer_args(deploy, bundle),
        "env": [
            {"name": "HYPERREC_PSEUDONYM_KEY",
             "valueFrom": {"secretKeyRef": {"name": deploy.pseudonym_secret, "key": "key"}}},
            {"name": "HOME", "value": "/tmp"},
        ],
        "ports": [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080}, "periodSeconds": 10},
        "resources": deploy.transformer.resources.to_k8s(),
        "securityContext": security_context(TRANSFORMER_USER),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            {"name": "feedback", "mountPath": deploy.feedback_mount_path},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "serviceAccountName": deploy.service_account,
        **autoscaling(deploy.transformer, deploy.mode),
        "storageUris": [{"uri": bundle.root_uri, "mountPath": deploy.bundle_mount_path}],
        "volumes": [
            {"name": "config", "configMap": {"name": deploy.config_map}},
            {"name": "feedback", "persistentVolumeClaim": {"claimName": deploy.feedback_claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
        "containers": [container],
    }


def inference_service(deploy: DeployConfig, cluster: Any, bundle: RegisteredBundle) -> dict[str, Any]:
    """The whole InferenceService body for ``bundle`` (what a first deploy creates).

    Args:
        deploy: the deploy settings (name, namespace, mode and the component settings).
        cluster: the cluster settings (GPU settings and serving image).
        bundle: the registered bundle, named in the annotations.

    Returns:
        The body as a dict, ready to send or print.
    """
    annotations = {
        "serving.kserve.io/deploymentMode": deploy.mode,
        "serving.kserve.io/enable-prometheus-scraping": "true",
        # One scrape target per pod: KServe's queue-proxy merges its own and the container's metrics.
        "serving.kserve.io/enable-metric-aggregation": "true",
    }
    if deploy.mode == "RawDeployment":
        annotations["serving.kserve.io/autoscalerClass"] = "hpa"
    annotations.update({
        REGISTERED_MODEL: bundle.name,
        MODEL_VERSION: bundle.version,
        MODEL_REFERENCE: bundle.reference,
        BUNDLE_URI: bundle.root_uri,
    })
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": deploy.service_name,
            "namespace": deploy.namespace,
            "labels": {
                "app.kubernetes.io/name": "hyperrec",
                "app.kubernetes.io/instance": deploy.service_name,
                "app.kubernetes.io/part-of": "hyperrec",
                "app.kubernetes.io/managed-by": "hyperrec-deploy",
            },
            "annotations": annotations,
        },
        "spec": {
            "predictor": predictor_spec(deploy, cluster.gpu, bundle),
            "transformer": transformer_spec(deploy, cluster.serving_image, bundle),
        },
    }


def with_canary(body: dict[str, Any], percent: int) -> dict[str, Any]:
    """``body`` with both components' ``canaryTrafficPercent`` set (they roll out and roll back as a pair)."""
    spec = {role: {**component, "canaryTrafficPercent": percent} for role, component in body["spec"].items()}
    return {**body, "spec": spec}
