"""From ``NAME@ALIAS`` (or ``NAME/VERSION``) to the bundle's URIs that KServe's storage initializer reads.

A registered version's ``source`` is the concrete artifact URI of its bundle folder in the MLflow artifact
store (hyperrec.registry): ``s3://…/artifacts/bundle``, ``gs://…``, ``pvc://…`` or a local path. The
InferenceService names that folder twice: the transformer downloads the bundle root (``<root>/``, the trailing
slash keeps S3's key-prefix listing inside this version's folder) and Triton loads ``<root>/triton``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from hyperrec.bundle_verify import MANIFEST_FILE
from hyperrec.registry.integrity import RegistryError
from hyperrec.registry.mlflow_registry import BundleRegistry
from hyperrec.registry.version_tags import FILES_TAG, MODEL_NAME_TAG, VersionInfo

logger = logging.getLogger(__name__)

TRITON_DIR = "triton"
#: URI schemes KServe's storage initializer downloads (or, for pvc, mounts); a plain path is a local one.
CLUSTER_SCHEMES = ("s3", "gs", "pvc", "hdfs", "webhdfs", "https", "http")
#: MLflow-only schemes: they resolve through the tracking server, which KServe never talks to.
MLFLOW_SCHEMES = ("mlflow-artifacts", "runs", "models", "dbfs")
_REFERENCE = re.compile(r"^(?P<name>[^@/\s]+)(?:@(?P<alias>[^@/\s]+)|/(?P<version>\d+))$")


class DeployError(RegistryError):
    """A deployment cannot be built or applied (bad reference, unreadable bundle, wrong Triton config)."""


@dataclass(frozen=True)
class RegisteredBundle:
    """One registered version and where its bundle lies, as the cluster will read it."""

    name: str
    version: str
    alias: str | None
    source: str  #: the artifact URI MLflow recorded (read through MLflow here)
    root_uri: str  #: bundle root for the transformer's storageUris, with a trailing slash
    triton_uri: str  #: ``<root>/triton`` for the predictor's storageUri
    model_name: str  #: the Triton model (``triton/<model_name>/``)
    files: dict[str, str] = field(repr=False)  #: ``{path: sha256}`` recorded at registration

    @property
    def reference(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"

    @property
    def is_local(self) -> bool:
        """A plain path: fine for ``--dry-run`` and embedded tests, unreadable for a cluster's pods."""
        return urlparse(self.root_uri).scheme not in CLUSTER_SCHEMES


def parse_reference(text: str) -> tuple[str, str | None, str | None]:
    """``NAME@ALIAS`` → (name, alias, None); ``NAME/VERSION`` → (name, None, version)."""
    match = _REFERENCE.match(text.strip())
    if not match:
        raise DeployError(
            f"expected NAME@ALIAS (e.g. hyperrec-ranker@champion) or NAME/VERSION; got {text!r}"
        )
    return match["name"], match["alias"], match["version"]


def cluster_uri(source: str, storage_map: dict[str, str]) -> str:
    """The URI the storage initializer gets for an MLflow artifact URI (``storage_map`` prefixes rewritten).

    ``file://`` becomes a plain path (what kserve-storage's local download takes); MLflow's own schemes are
    refused because only the tracking server can resolve them.

    Args:
        source: the version's MLflow artifact URI.
        storage_map: URI prefix -> its replacement; the longest matching prefix is rewritten.

    Returns:
        The URI (or plain path) for the storage initializer.

    Raises:
        DeployError: the URI needs the MLflow server, or its scheme is one KServe cannot read.
    """
    for prefix in sorted(storage_map, key=len, reverse=True):
        if source.startswith(prefix):
            source = storage_map[prefix] + source[len(prefix):]
            break
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme in MLFLOW_SCHEMES:
        raise DeployError(
            f"bundle artifact URI {source!r} goes through the MLflow server ({parsed.scheme}:), which KServe "
            "cannot read; give MLflow a direct artifact root (s3://, gs://, a PVC path) or map the prefix "
            "with deploy.storage_map"
        )
    if parsed.scheme and parsed.scheme not in CLUSTER_SCHEMES:
        raise DeployError(f"KServe's storage initializer cannot read {parsed.scheme}: URIs ({source!r})")
    return source


def resolve_bundle(registry: BundleRegistry, reference: str, storage_map: dict[str, str]) -> RegisteredBundle:
    """Resolve a reference to a registered hyperrec bundle whose artifacts are really in the store.

    Args:
        registry: the MLflow registry client.
        reference: ``NAME@ALIAS`` or ``NAME/VERSION``.
        storage_map: URI prefix rewrites, as in ``cluster_uri``.

    Returns:
        The bundle with its cluster-readable root and Triton URIs, model name and files.

    Raises:
        DeployError: the reference is malformed, the alias is unknown, the version holds no hyperrec bundle,
            or its artifacts are missing from the store.
    """
    name, alias, version = parse_reference(reference)
    if alias is not None:
        info = registry.alias_version(name, alias)
        if info is None:
            raise DeployError(f"registered model {name!r} has no alias {alias!r}")
    else:
        info = registry.version(name, version)
    files, model_name = _bundle_tags(info)
    _check_stored(registry, info)
    base = cluster_uri(info.source, storage_map).rstrip("/")
    return RegisteredBundle(
        name=name, version=info.version, alias=alias, source=info.source, root_uri=f"{base}/",
        triton_uri=f"{base}/{TRITON_DIR}", model_name=model_name, files=files,
    )


def _bundle_tags(info: VersionInfo) -> tuple[dict[str, str], str]:
    tags = info.bundle_files(MODEL_NAME_TAG)
    if tags is None:
        raise DeployError(f"{info.name} v{info.version} was not registered by hyperrec (no {FILES_TAG} / "
                          f"{MODEL_NAME_TAG} tags); it holds no serving bundle")
    files, model_name = tags
    if not any(path.startswith(f"{TRITON_DIR}/{model_name}/") for path in files):
        raise DeployError(f"{info.name} v{info.version}: the bundle has no {TRITON_DIR}/{model_name}/ folder")
    return files, model_name


def _check_stored(registry: BundleRegistry, info: VersionInfo) -> None:
    """List the version's artifact folder: it must hold manifest.json and triton/ (not just the tags)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        listed = mlflow.artifacts.list_artifacts(artifact_uri=info.source, tracking_uri=registry.tracking_uri)
    except (MlflowException, OSError) as exc:
        raise DeployError(
            f"cannot list {info.name} v{info.version}'s bundle at {info.source}: {exc}"
        ) from None
    names = {entry.path.rstrip("/").rsplit("/", 1)[-1] for entry in listed or []}
    missing = sorted({MANIFEST_FILE, TRITON_DIR} - names)
    if missing:
        raise DeployError(f"{info.name} v{info.version}'s bundle at {info.source} lacks {', '.join(missing)}")
    logger.info("%s v%s: bundle found at %s", info.name, info.version, info.source)
