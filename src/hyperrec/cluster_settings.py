"""Settings of the cluster a pipeline runs on (``cluster:``): the images and the GPU scheduling of training.

Below ``hyperrec.config`` (which assembles it), so that the KFP components, the pipelines, deploy and the
PyTorchJob body read one definition of the images without importing the whole config.
"""

from __future__ import annotations

from pydantic import Field

from hyperrec.settings_base import Section as _Section


class GpuConfig(_Section):
    """Cluster scheduling of the training task; ignored by the local runner."""

    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = Field(1, ge=0)
    node_selector_key: str = "cloud.google.com/gke-accelerator"
    node_selector_value: str = "nvidia-l4"
    toleration_key: str = "nvidia.com/gpu"


#: The components image (``cluster.image``'s default; every KFP component is compiled with it).
COMPONENTS_IMAGE = "ghcr.io/hyperrec/hyperrec:0.1.0"


class ClusterConfig(_Section):
    """How components run on a Kubernetes cluster."""

    image: str = Field(
        COMPONENTS_IMAGE,
        description="Components image (hyperrec with torch): every KFP component and the drift CronJob run "
                    "in it.",
    )
    serving_image: str = Field(
        "ghcr.io/hyperrec/hyperrec-serving:0.1.0",
        description="Slim serving image (no torch): the KServe transformer runs in it.",
    )
    gpu: GpuConfig = GpuConfig()
