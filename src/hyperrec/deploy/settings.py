"""Typed settings of ``hyperrec deploy``, mounted as ``HyperrecConfig.deploy``.

They describe the KServe InferenceService that serves a registered bundle: where it lives, how it scales, on
which node pool its Triton predictor runs and how a new version is rolled out. The defaults equal the
hand-written ``manifests/base/inferenceservice.yaml`` (a test keeps them equal), so ``hyperrec deploy`` and
the kustomize/Helm forms describe the same service.

This module must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hyperrec.settings_base import Section as _Section

#: Metrics each autoscaler can act on: Knative's KPA scales on requests, KServe's HPA on pod resources.
KPA_METRICS = ("concurrency", "rps")
HPA_METRICS = ("cpu", "memory")


class ComputeResources(_Section):
    """Requests and limits of one container (Kubernetes quantities, e.g. ``"2"``, ``"500m"``, ``"8Gi"``)."""

    cpu_request: str = "1"
    cpu_limit: str = "2"
    memory_request: str = "2Gi"
    memory_limit: str = "2Gi"

    def to_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


class KpaSettings(_Section):
    """Knative Pod Autoscaler settings that have no InferenceService field (Serverless mode only)."""

    target_utilization_percentage: int = Field(
        70,
        ge=1,
        le=100,
        description="Scale up when replicas average this share of scaleTarget: burst headroom.",
    )
    window: str = Field("60s", pattern=r"^\d+[sm]$", description="Averaging window of the autoscaler.")
    scale_down_delay: str = Field(
        "1m", pattern=r"^\d+[sm]$", description="Keep a replica this long after load drops."
    )


class PredictorKpa(KpaSettings):
    """Triton loads the model for a while: average over longer and keep replicas longer."""

    window: str = Field("120s", pattern=r"^\d+[sm]$", description="Averaging window of the autoscaler.")
    scale_down_delay: str = Field(
        "5m", pattern=r"^\d+[sm]$", description="Keep a replica this long after load drops."
    )


class ComponentScaling(_Section):
    """Replica bounds and the autoscaling target of one component (predictor or transformer)."""

    min_replicas: int = Field(
        1, ge=0, description="0 lets Knative scale the component to zero (Serverless only)."
    )
    max_replicas: int = Field(3, ge=1)
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] = Field(
        "concurrency",
        description="Serverless (KPA): concurrency or rps; RawDeployment (HPA): cpu or memory (utilization "
                    "%).",
    )
    scale_target: int = Field(
        16, ge=1, description="Target per replica: in-flight requests, requests/s or %."
    )
    resources: ComputeResources = Field(default_factory=ComputeResources)
    kpa: KpaSettings = Field(default_factory=KpaSettings)

    @model_validator(mode="after")
    def _bounds(self) -> ComponentScaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self


class PredictorResources(ComputeResources):
    """Triton's container: the whole catalogue's scores per request (GPUs are added per node pool)."""

    cpu_request: str = "2"
    cpu_limit: str = "4"
    memory_request: str = "8Gi"
    memory_limit: str = "8Gi"


class PredictorScaling(ComponentScaling):
    """The Triton predictor. Own defaults, so overriding one key keeps the others (YAML sections replace)."""

    max_replicas: int = Field(3, ge=1)
    scale_target: int = Field(
        16, ge=1, description="Target per replica: in-flight requests, requests/s or %."
    )
    resources: PredictorResources = Field(default_factory=PredictorResources)
    kpa: PredictorKpa = Field(default_factory=PredictorKpa)


class TransformerScaling(ComponentScaling):
    """The hyperrec transformer."""

    max_replicas: int = Field(4, ge=1)
    scale_target: int = Field(
        32, ge=1, description="Target per replica: in-flight requests, requests/s or %."
    )


class DeployConfig(_Section):
    """The InferenceService ``hyperrec deploy`` creates or patches (see docs/DEPLOY.md)."""

    enabled: bool = Field(
        False, description="The training pipeline ends with a deploy step when the gate registers a version.",
    )
    namespace: str = Field("hyperrec", description="Namespace of the InferenceService.")
    service_name: str = Field("hyperrec", description="metadata.name of the InferenceService.")
    mode: Literal["Serverless", "RawDeployment"] = Field(
        "Serverless",
        description="KServe deployment mode: Serverless (Knative, KPA, canary traffic split) or "
        "RawDeployment (Deployment + HPA, no traffic split).",
    )
    node_pool: Literal["gpu", "cpu"] = Field(
        "gpu",
        description="Where Triton runs: gpu (cluster.gpu selector/toleration, the bundle's KIND_GPU "
        "config.pbtxt) or cpu (no GPU, Triton told --model-config-name=cpu: the bundle's KIND_CPU "
        "configs/cpu.pbtxt).",
    )
    gpus: int = Field(1, ge=1, description="GPUs per predictor replica on the gpu node pool.")
    canary_traffic_percent: int = Field(
        10, ge=0, le=100,
        description="Share of traffic the new version gets when an existing InferenceService is patched "
        "(Serverless only; the first deploy serves 100%).",
    )
    service_account: str = Field("hyperrec-serving", description="ServiceAccount with model-store access.")
    bundle_mount_path: str = Field(
        "/mnt/models",
        pattern=r"^/.*",
        description="Where the storage initializer puts the bundle root in the transformer "
                    "(serving.bundle_dir).",
    )
    config_map: str = Field(
        "hyperrec-config", description="ConfigMap holding config.yaml for the transformer."
    )
    feedback_claim: str = Field("hyperrec-feedback", description="PVC of the feedback log.")
    feedback_mount_path: str = Field("/var/lib/hyperrec/feedback", pattern=r"^/.*",
                                     description="Mount of the feedback log (serving.feedback_dir).")
    pseudonym_secret: str = Field("hyperrec-pseudonym-key",
                                  description="Secret (key 'key') with the pseudonymization HMAC key.")
    storage_map: dict[str, str] = Field(
        default_factory=dict,
        description="Prefix rewrites of the registry's artifact URI into one the cluster reads, e.g. "
        "{'/mnt/mlflow/': 'pvc://mlflow-artifacts/'}; the longest matching prefix wins.",
    )
    predictor: PredictorScaling = Field(default_factory=PredictorScaling)
    transformer: TransformerScaling = Field(default_factory=TransformerScaling)

    @model_validator(mode="after")
    def _metrics_fit_the_mode(self) -> DeployConfig:
        allowed = KPA_METRICS if self.mode == "Serverless" else HPA_METRICS
        for role in ("predictor", "transformer"):
            scaling: ComponentScaling = getattr(self, role)
            if scaling.scale_metric not in allowed:
                raise ValueError(
                    f"{role}.scale_metric {scaling.scale_metric!r} does not work in {self.mode} mode "
                    f"(use one of {', '.join(allowed)})"
                )
            if self.mode == "RawDeployment" and scaling.min_replicas < 1:
                raise ValueError(f"{role}.min_replicas must be >= 1 in RawDeployment mode (no scale to zero)")
        return self
