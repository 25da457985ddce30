"""The fine-tuning step as a Kubeflow Training Operator PyTorchJob, for training that outgrows one node.

``pytorchjob_body(cfg, ...)`` returns the ``kubeflow.org/v1`` PyTorchJob that runs the *same* entry point as
the fine_tune component and ``torchrun`` locally: ``hyperrec fine-tune --prepared P --output O``, under
``torchrun`` with one process per GPU. The operator starts one Master and ``workers`` Worker pods and sets
``MASTER_ADDR``/``MASTER_PORT``/``WORLD_SIZE``/``RANK`` in each, which torchrun (``nprocPerNode``) turns into
per-process ranks; ``hyperrec.modeling.distributed`` then trains with DistributedDataParallel over nccl.
Images, GPU resources, node selector and toleration come from ``cluster`` in the config, as for the KFP
components. manifests/training/pytorchjob.yaml is this body for the default config (a test keeps them equal).
"""

from __future__ import annotations

from typing import Any, Protocol

from hyperrec.cluster_settings import ClusterConfig

API_VERSION = "kubeflow.org/v1"
KIND = "PyTorchJob"
#: The container name the Training Operator requires for PyTorchJob replicas.
CONTAINER = "pytorch"
CONFIG_MOUNT = "/etc/hyperrec"


class ClusterSettings(Protocol):
    """What the body reads of ``HyperrecConfig``: its cluster section (a protocol, because ``hyperrec.config``
    imports this package's settings)."""

    cluster: ClusterConfig


def fine_tune_command(prepared: str, output: str, config_path: str) -> list[str]:
    """The entry point every replica runs. torchrun reads PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
    PET_MASTER_ADDR and PET_MASTER_PORT, which the operator sets in every pod, from the environment."""
    return ["torchrun", "-m", "hyperrec.cli", "fine-tune", "--config", config_path, "--prepared", prepared,
            "--output", output]


def _replica(
    cfg: ClusterSettings, replicas: int, command: list[str], volumes: dict[str, str]
) -> dict[str, Any]:
    gpu = cfg.cluster.gpu
    pod: dict[str, Any] = {
        "containers": [{
            "name": CONTAINER,
            "image": cfg.cluster.image,
            "command": list(command),
            "resources": {"limits": {gpu.accelerator_type: gpu.accelerator_limit}},
            "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                             {"name": "data", "mountPath": "/data"}],
        }],
        "nodeSelector": {gpu.node_selector_key: gpu.node_selector_value},
        "tolerations": [{"key": gpu.toleration_key, "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "config", "configMap": {"name": volumes["config_map"]}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": volumes["data_claim"]}}],
    }
    return {"replicas": replicas, "restartPolicy": "OnFailure", "template": {"spec": pod}}


def pytorchjob_body(cfg: ClusterSettings, *, name: str = "hyperrec-fine-tune", namespace: str = "hyperrec",
                    workers: int = 1, prepared: str = "/data/prepared", output: str = "/data/models/language",
                    config_map: str = "hyperrec-config", data_claim: str = "hyperrec-training-data",
                    ) -> dict[str, Any]:
    """One Master and ``workers`` Workers, each using every GPU of its node (``cluster.gpu.accelerator_limit``
    processes per node); the config is mounted from ``config_map``, data and models live on ``data_claim``.

    Args:
        cfg: the configuration; its ``cluster`` section gives the image, GPUs and node placement.
        name: the job's name.
        namespace: the job's namespace.
        workers: Worker replicas beside the Master (0: the Master alone).
        prepared: the prepared-data folder, on the claim.
        output: where the models are written, on the claim.
        config_map: the ConfigMap with ``config.yaml``.
        data_claim: the PersistentVolumeClaim mounted at ``/data``.

    Returns:
        The PyTorchJob resource (``kubeflow.org/v1``).
    """
    if workers < 0:
        raise ValueError("workers must be >= 0")
    command = fine_tune_command(prepared, output, f"{CONFIG_MOUNT}/config.yaml")
    volumes = {"config_map": config_map, "data_claim": data_claim}
    specs = {"Master": _replica(cfg, 1, command, volumes)}
    if workers:
        specs["Worker"] = _replica(cfg, workers, command, volumes)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "hyperrec", "app.kubernetes.io/component": "fine-tune"},
        },
        "spec": {
            "nprocPerNode": str(max(cfg.cluster.gpu.accelerator_limit, 1)),
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 2},
            "pytorchReplicaSpecs": specs,
        },
    }
