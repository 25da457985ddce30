"""Object-store copies of the drift monitor's windows: the reference downloaded for its own check, and the
current window uploaded for the retraining run it starts.

On a cluster the drift CronJob reads the feedback log from its PVC, but the retraining pipeline's pods import
their inputs only from object-store URIs. So when the trigger starts a KFP run, the window it has just checked
is written as Parquet under ``<monitoring.trigger.kfp.current_uri>/<pipeline_run>/`` and the run imports that
exact folder: the run retrains on the rows that made the decision, not on whatever the bucket holds. Every
check also rewrites ``<current_uri>/latest/`` with the window it checked, which the weekly recurring run
imports (it has no window of its own). Likewise
``monitoring.sources.reference`` may be an object-store URI (the champion's prepared data, the same URI the
run's ``reference_uri`` names), downloaded once into a local folder because the readers need a file tree.

The transfers go through MLflow's artifact repositories: the client (boto3 for ``s3://``, google-cloud-storage
for ``gs://``) and the credentials (``AWS_*``, ``MLFLOW_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL`` for an
S3-compatible server) that the registry's artifact store already uses.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from hyperrec.errors import ConfigError, DataError
from hyperrec.monitoring.settings import URI_SCHEME

logger = logging.getLogger(__name__)

#: Schemes MLflow's artifact repositories read and write (KFP's own ``minio://`` is not one of them).
TRANSFER_SCHEMES = ("s3", "gs")
CURRENT_SNAPSHOT = "current.parquet"
#: The folder under ``current_uri`` that always holds the most recently checked window.
LATEST = "latest"


def is_remote_uri(source: str | Path) -> bool:
    """Whether a configured source names an object-store URI (``scheme://``) rather than a local path."""
    return isinstance(source, str) and bool(URI_SCHEME.match(source))


def _check_scheme(uri: str) -> None:
    if uri.partition("://")[0] not in TRANSFER_SCHEMES:
        raise ConfigError(
            f"{uri!r}: the drift monitor reads and writes only {', '.join(TRANSFER_SCHEMES)}:// "
            "object-store URIs (for KFP's own MinIO give its s3:// name and MLFLOW_S3_ENDPOINT_URL)"
        )


def download(uri: str, destination: Path) -> Path:
    """Copy the file or folder at ``uri`` under ``destination``; returns its local path.

    Args:
        uri: an object-store URI of a file or folder.
        destination: the local folder to copy into.

    Returns:
        The local path of the copy.

    Raises:
        ConfigError: the URI's scheme is not an object store.
        DataError: the download fails or finds nothing.
    """
    from mlflow.artifacts import download_artifacts

    _check_scheme(uri)
    try:
        local = Path(download_artifacts(artifact_uri=uri.rstrip("/"), dst_path=str(destination)))
    except Exception as exc:  # noqa: BLE001 - MLflow, boto3 and the network raise many types
        raise DataError(f"cannot download: {type(exc).__name__}: {exc}", file=uri) from None
    if local.is_dir() and not any(local.iterdir()):
        raise DataError("nothing found under this URI", file=uri)
    logger.info("downloaded %s to %s", uri, local)
    return local


def upload_snapshot(frame: Any, prefix_uri: str, run_name: str) -> str:
    """Write ``frame`` as ``<prefix_uri>/<run_name>/current.parquet``; returns the folder URI (with a trailing
    slash, as a KFP importer of a folder takes it).

    Args:
        frame: the window's rows (a DataFrame).
        prefix_uri: the object-store folder URI.
        run_name: the subfolder name (the pipeline run, so a retried launch writes the same key).

    Returns:
        The folder URI, ending in "/".

    Raises:
        ConfigError: the URI's scheme is not an object store.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    _check_scheme(prefix_uri)
    folder = f"{prefix_uri.rstrip('/')}/{run_name}"
    with tempfile.TemporaryDirectory(prefix="hyperrec-window-") as tmp:
        path = Path(tmp) / CURRENT_SNAPSHOT
        frame.to_parquet(path, index=False)
        get_artifact_repository(folder).log_artifact(str(path))
    logger.info("uploaded the current window (%d rows) to %s/", len(frame), folder)
    return f"{folder}/"
