"""Model config vs node pool: the Triton config the predictor is told to load must exist and fit the pool.

On the ``gpu`` pool Triton loads ``triton/<model>/config.pbtxt``; on the ``cpu`` pool the InferenceService
passes ``--model-config-name=cpu`` and Triton loads ``triton/<model>/configs/cpu.pbtxt`` instead. A config
whose instance groups ask for another kind of device fails on the cluster only when the pod starts (or, for
KIND_GPU on a CPU node, never becomes ready), so the deployment checks the very file from the artifact store
before anything is sent.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Literal

from hyperrec.deploy.source import TRITON_DIR, DeployError, RegisteredBundle
from hyperrec.errors import BundleError
from hyperrec.export.bundle import CPU_CONFIG_NAME
from hyperrec.export.triton_config import parse_triton_config
from hyperrec.hashing import sha256_file

logger = logging.getLogger(__name__)

NodePool = Literal["gpu", "cpu"]
#: The instance-group kind each node pool needs (tritonclient's model_config.proto names).
POOL_KIND = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


def config_path(model_name: str, node_pool: NodePool) -> str:
    """Bundle-relative path of the Triton config the predictor loads on ``node_pool``."""
    if node_pool == "cpu":
        return f"{TRITON_DIR}/{model_name}/configs/{CPU_CONFIG_NAME}.pbtxt"
    return f"{TRITON_DIR}/{model_name}/config.pbtxt"


def triton_args(node_pool: NodePool) -> list[str]:
    """Extra Triton arguments (appended to the runtime's) that select the config for ``node_pool``."""
    return [f"--model-config-name={CPU_CONFIG_NAME}"] if node_pool == "cpu" else []


def instance_kinds(path: Path) -> list[str]:
    """The ``kind`` of every instance group of a config.pbtxt (e.g. ``["KIND_GPU"]``)."""
    from hyperrec.export.triton_config import model_config_pb2

    try:
        config = parse_triton_config(path)
    except BundleError as exc:
        raise DeployError(str(exc)) from None
    kind_name = model_config_pb2().ModelInstanceGroup.Kind.Name
    return [kind_name(group.kind) for group in config.instance_group]


def check_model_config(bundle: RegisteredBundle, node_pool: NodePool, tracking_uri: str) -> str:
    """Download the config Triton will load from the artifact store and check it against the node pool.

    Returns the bundle-relative path that was checked. Raises DeployError naming the file when it is missing,
    differs from the sha256 recorded at registration, or asks for another device kind.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    path = config_path(bundle.model_name, node_pool)
    where = f"{bundle.reference} (v{bundle.version}) {path}"
    if path not in bundle.files:
        raise DeployError(
            f"{where}: not in the bundle, so Triton on the {node_pool} pool has no config to load"
        )
    with tempfile.TemporaryDirectory(prefix="hyperrec-deploy-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"{bundle.source.rstrip('/')}/{path}", dst_path=tmp, tracking_uri=tracking_uri))
        except (MlflowException, OSError) as exc:
            raise DeployError(f"{where}: cannot download it from {bundle.source}: {exc}") from None
        if sha256_file(local) != bundle.files[path]:
            raise DeployError(f"{where}: sha256 differs from the one recorded at registration")
        kinds = instance_kinds(local)
    wanted = POOL_KIND[node_pool]
    if not kinds or any(kind != wanted for kind in kinds):
        raise DeployError(
            f"{where}: instance groups {kinds or 'none'} do not match the {node_pool} node pool "
            f"(needs {wanted} only)"
        )
    logger.info("%s: %s matches the %s node pool", where, wanted, node_pool)
    return path
