"""Serving bundles in the MLflow Model Registry: register, promote, roll back, download (sha256-verified).

A registered version's ``source`` is the concrete artifact URI of the bundle folder logged to an MLflow run
(``<run artifact_uri>/bundle``, e.g. ``s3://.../artifacts/bundle``), so KServe's storage initializer or
``download_bundle`` can fetch it without going through the tracking server's ``runs:/`` resolution.

Aliases (one version each, moved, never copied):

- ``challenger``: the latest version that passed the gate (set by ``register_bundle``);
- ``champion``: what serving loads (set by ``promote``);
- ``previous-champion``: the champion before the last promotion, the target of ``rollback``.

Each version remembers the champion it replaced in the tag ``hyperrec.previous_champion``, so ``rollback``
can be repeated down the chain of promotions.

Version tags (all strings; ``@`` becomes ``_at_`` because MLflow keys may not contain it):

- lineage: ``hyperrec.pipeline_run``, ``hyperrec.training_run_id``, ``hyperrec.data_report_sha256``,
  ``hyperrec.config_sha256``, ``hyperrec.eval.protocol_sha256`` (``unknown`` when not known);
- bundle: ``hyperrec.bundle.model_name``, ``.version``, ``.n_items``, ``.manifest_sha256``, ``.files`` (JSON
  ``{path: sha256}``, authoritative), ``.lineage`` (the manifest's lineage, JSON), and one
  ``hyperrec.sha256.<path>`` per file for the UI;
- gate: ``hyperrec.gate.passed``, ``.metric``, ``.challenger``, ``.challenger_value``, ``.best_baseline``,
  ``.best_baseline_value``, ``.champion_value``, ``.champion_version``, ``.margin``, ``.min_improvement``,
  ``.decision`` (the whole decision JSON);
- metrics: ``hyperrec.metric.<protocol>.<metric>`` for every number of the challenger's metrics.json entry
  (``hyperrec.metric.full.ndcg_at_10``); ``champion_metric`` reads these.

MLflow is imported lazily, so ``import hyperrec.registry`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Union

from hyperrec.config import HyperrecConfig
from hyperrec.errors import HyperrecError
from hyperrec.hashing import sha256_file
from hyperrec.registry.gate import DEFAULT_METRIC, GateDecision, canonical_metric
from hyperrec.tracking import PIPELINE_RUN_TAG, STEP_TAG

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"
DEFAULT_REGISTERED_NAME = "hyperrec-ranker"
BUNDLE_ARTIFACT_PATH = "bundle"
DECISION_ARTIFACT = "gate/decision.json"
MANIFEST_FILE = "manifest.json"
UNKNOWN = "unknown"

TRAINING_RUN_TAG = "hyperrec.training_run_id"
DATA_REPORT_TAG = "hyperrec.data_report_sha256"
CONFIG_TAG = "hyperrec.config_sha256"
PROTOCOL_TAG = "hyperrec.eval.protocol_sha256"
MODEL_NAME_TAG = "hyperrec.bundle.model_name"
BUNDLE_VERSION_TAG = "hyperrec.bundle.version"
N_ITEMS_TAG = "hyperrec.bundle.n_items"
MANIFEST_SHA_TAG = "hyperrec.bundle.manifest_sha256"
FILES_TAG = "hyperrec.bundle.files"
BUNDLE_LINEAGE_TAG = "hyperrec.bundle.lineage"
FILE_TAG_PREFIX = "hyperrec.sha256."
METRIC_TAG_PREFIX = "hyperrec.metric."
GATE_TAG_PREFIX = "hyperrec.gate."
PREVIOUS_CHAMPION_TAG = "hyperrec.previous_champion"
PROMOTED_AT_TAG = "hyperrec.promoted_at"
ROLLED_BACK_AT_TAG = "hyperrec.rolled_back_at"
ROLLED_BACK_TO_TAG = "hyperrec.rolled_back_to"
REGISTER_STEP = "register_bundle"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_TAG_KEY_RE = re.compile(r"^[/\w.\- :]{1,250}$")
#: The manifest lineage keys that fill the lineage tags when the caller does not give them.
_LINEAGE_KEYS = (TRAINING_RUN_TAG, DATA_REPORT_TAG, CONFIG_TAG)


class RegistryError(HyperrecError):
    """A registry operation cannot be done (no such model/alias, gate not passed, nothing to roll back to)."""


class BundleIntegrityError(RegistryError):
    """A bundle folder does not match its manifest or the sha256s recorded in the registry."""


RegistryTarget = Union[HyperrecConfig, str, "BundleRegistry"]


# --------------------------------------------------------------------------------------------- hashing


def sha256_json(payload: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_sha256(cfg: HyperrecConfig) -> str:
    """Hash of the whole configuration, as lineage of a registered version."""
    return sha256_json(cfg.model_dump(mode="json"))


def hash_bundle_files(root: Path) -> dict[str, str]:
    """``{posix relative path: sha256}`` of every file under ``root`` except manifest.json."""
    root = Path(root)
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() != MANIFEST_FILE
    }


def read_bundle_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a bundle folder, checked for a well-formed ``files`` map (no hashing)."""
    path = Path(root) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleIntegrityError(f"not a serving bundle (no {MANIFEST_FILE}): {root}") from None
    except (OSError, ValueError) as exc:
        raise BundleIntegrityError(f"unreadable manifest {path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleIntegrityError(f"{path} must hold a JSON object")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleIntegrityError(f"{path}: 'files' must map every bundle file to its sha256")
    for name, digest in files.items():
        pure = PurePosixPath(name)
        if not name or pure.is_absolute() or ".." in pure.parts or name != pure.as_posix() or name == MANIFEST_FILE:
            raise BundleIntegrityError(f"{path}: invalid file path {name!r} in 'files'")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise BundleIntegrityError(f"{path}: {name!r} has no lowercase hex sha256")
    return manifest


def verify_bundle_dir(
    root: Path,
    expected_files: Mapping[str, str] | None = None,
    expected_manifest_sha256: str | None = None,
) -> dict[str, Any]:
    """Re-hash every file of a bundle folder; return its manifest or raise BundleIntegrityError.

    The folder must hold exactly the files manifest.json lists (none missing, none extra, every sha256
    equal). With ``expected_files`` / ``expected_manifest_sha256`` (what the registry recorded at
    registration), the manifest itself must also be the registered one, so editing a file *and* its
    manifest entry is caught too.
    """
    root = Path(root)
    manifest = read_bundle_manifest(root)
    listed: dict[str, str] = manifest["files"]
    actual = hash_bundle_files(root)
    problems = [f"missing: {name}" for name in sorted(set(listed) - set(actual))]
    problems += [f"not in manifest: {name}" for name in sorted(set(actual) - set(listed))]
    problems += [f"sha256 mismatch: {name}" for name in sorted(set(listed) & set(actual))
                 if listed[name] != actual[name]]
    if expected_files is not None and dict(expected_files) != listed:
        changed = sorted(set(expected_files).symmetric_difference(listed)
                         | {n for n in set(expected_files) & set(listed) if expected_files[n] != listed[n]})
        problems.append(f"manifest differs from the registered file list: {changed}")
    if expected_manifest_sha256 is not None:
        manifest_sha = sha256_file(root / MANIFEST_FILE)
        if manifest_sha != expected_manifest_sha256:
            problems.append(f"manifest.json sha256 {manifest_sha} != registered {expected_manifest_sha256}")
    if problems:
        raise BundleIntegrityError(f"bundle {root} failed verification: " + "; ".join(problems))
    return manifest


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class VersionInfo:
    """What callers need of an MLflow ModelVersion (plain strings, JSON-ready)."""

    name: str
    version: str
    source: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_model_version(cls, mv: Any, aliases: Mapping[str, Any] | None = None) -> VersionInfo:
        version = str(mv.version)
        if aliases is not None:
            names = tuple(sorted(alias for alias, v in aliases.items() if str(v) == version))
        else:
            names = tuple(sorted(mv.aliases or ()))
        return cls(name=mv.name, version=version, source=mv.source, run_id=mv.run_id or None,
                   aliases=names, tags=dict(mv.tags or {}))

    def to_dict(self, *, with_tags: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version, "source": self.source,
                                "run_id": self.run_id, "aliases": list(self.aliases)}
        if with_tags:
            data["tags"] = dict(self.tags)
        return data


def metric_tag(metric: str) -> str:
    """Version tag holding ``metric`` (``full.ndcg@10`` -> ``hyperrec.metric.full.ndcg_at_10``)."""
    return METRIC_TAG_PREFIX + canonical_metric(metric).replace("@", "_at_")


def _numeric_leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    leaves: dict[str, float] = {}
    for key, value in tree.items():
        if key == "segments":  # per-segment numbers are many and never gate anything
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            leaves.update(_numeric_leaves(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            leaves[name] = float(value)
    return leaves


def _gate_tags(decision: GateDecision) -> dict[str, str]:
    def number(value: float | None) -> str:
        return "none" if value is None else repr(float(value))

    return {
        f"{GATE_TAG_PREFIX}passed": str(decision.passed).lower(),
        f"{GATE_TAG_PREFIX}metric": decision.metric,
        f"{GATE_TAG_PREFIX}challenger": decision.challenger,
        f"{GATE_TAG_PREFIX}challenger_value": number(decision.challenger_value),
        f"{GATE_TAG_PREFIX}best_baseline": decision.best_baseline,
        f"{GATE_TAG_PREFIX}best_baseline_value": number(decision.best_baseline_value),
        f"{GATE_TAG_PREFIX}champion_value": number(decision.champion_value),
        f"{GATE_TAG_PREFIX}champion_version": decision.champion_version or "none",
        f"{GATE_TAG_PREFIX}margin": number(decision.margin),
        f"{GATE_TAG_PREFIX}min_improvement": number(decision.min_improvement),
        f"{GATE_TAG_PREFIX}decision": decision.to_json(),
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _error_code(exc: Exception) -> str | None:
    return getattr(exc, "error_code", None)


# --------------------------------------------------------------------------------------------- registry


class BundleRegistry:
    """One MLflow tracking/registry URI and experiment; every registry operation is a method."""

    def __init__(self, tracking_uri: str, *, experiment: str = "hyperrec", artifact_location: str | None = None,
                 registry_uri: str | None = None) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.experiment = experiment
        db_path = _sqlite_path(tracking_uri)
        if db_path is not None:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            if artifact_location is None:
                # beside the database, like hyperrec.tracking, rather than ./mlruns of the working directory
                artifact_location = (db_path.parent / "mlartifacts").resolve().as_uri()
        self.artifact_location = artifact_location
        self.client: MlflowClient = MlflowClient(tracking_uri=tracking_uri,
                                                 registry_uri=registry_uri or tracking_uri)

    @classmethod
    def from_target(cls, target: RegistryTarget) -> BundleRegistry:
        """A registry from a HyperrecConfig (its tracking section), a tracking URI, or a registry."""
        if isinstance(target, BundleRegistry):
            return target
        if isinstance(target, HyperrecConfig):
            artifact_location = None
            if target.tracking.tracking_uri is None:
                artifact_location = (target.output_dir.parent / "mlartifacts").resolve().as_uri()
            return cls(target.mlflow_uri(), experiment=target.tracking.experiment,
                       artifact_location=artifact_location)
        if isinstance(target, str) and target:
            return cls(target)
        raise TypeError(f"expected a HyperrecConfig, a tracking URI or a BundleRegistry, got {type(target)}")

    # ----------------------------------------------------------------------------------------- lookups

    def experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(self.experiment, artifact_location=self.artifact_location)
        except MlflowException as exc:  # created concurrently by another step
            experiment = self.client.get_experiment_by_name(self.experiment)
            if experiment is None:
                raise RegistryError(f"cannot create MLflow experiment {self.experiment!r}: {exc}") from exc
            return experiment.experiment_id

    def aliases(self, registered_name: str) -> dict[str, str]:
        """``{alias: version}`` of a registered model; empty when the model does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(registered_name)
        except MlflowException as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}

    def version(self, registered_name: str, version: str | int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(registered_name, str(version))
        except MlflowException as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(f"registered model {registered_name!r} has no version {version}") from None
            raise
        return VersionInfo.from_model_version(mv, self.aliases(registered_name))

    def alias_version(self, registered_name: str, alias: str) -> VersionInfo | None:
        """The version an alias points to, or None when the model or the alias does not exist."""
        version = self.aliases(registered_name).get(alias)
        return None if version is None else self.version(registered_name, version)

    def champion_metric(self, registered_name: str, metric: str = DEFAULT_METRIC) -> float | None:
        """The champion's value of ``metric`` from its version tags; None when there is no champion.

        Raises RegistryError when a champion exists but never recorded that metric (e.g. the gate metric
        was changed in the config): comparing against nothing would let any challenger through.
        """
        champion = self.alias_version(registered_name, CHAMPION)
        if champion is None:
            return None
        raw = champion.tags.get(metric_tag(metric))
        if raw is None and champion.tags.get(f"{GATE_TAG_PREFIX}metric") == canonical_metric(metric):
            raw = champion.tags.get(f"{GATE_TAG_PREFIX}challenger_value")
        if raw is None:
            raise RegistryError(
                f"champion {registered_name} v{champion.version} has no recorded {metric!r} "
                f"(tag {metric_tag(metric)!r}); re-evaluate it or promote a version that has it"
            )
        try:
            return float(raw)
        except ValueError:
            raise RegistryError(f"champion tag {metric_tag(metric)!r} is not a number: {raw!r}") from None

    # ----------------------------------------------------------------------------------------- register

    def register_bundle(
        self,
        bundle_dir: Path,
        *,
        registered_name: str,
        decision: GateDecision,
        training_run_id: str | None,
        pipeline_run: str,
        run_id: str | None = None,
        lineage: Mapping[str, str] | None = None,
        challenger_metrics: Mapping[str, Any] | None = None,
        protocol: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> VersionInfo:
        """Verify the bundle, log it to an MLflow run, create a model version and point ``challenger`` at it.

        ``run_id``: log into this (active) run, e.g. the validate_and_register step's; otherwise a run
        tagged ``hyperrec.step=register_bundle`` is created and finished here. ``lineage`` maps lineage tag
        keys (``hyperrec.data_report_sha256``, ``hyperrec.config_sha256``, ...) to values; the bundle
        manifest's ``lineage`` fills what is not given (keys with or without the ``hyperrec.`` prefix).
        ``challenger_metrics`` is the challenger's metrics.json entry (its numbers become metric tags);
        ``protocol`` the metrics.json protocol block (hashed into ``hyperrec.eval.protocol_sha256``).
        A failed decision is refused unless ``force``.
        """
        from mlflow.entities import Param, RunTag
        from mlflow.exceptions import MlflowException

        if not decision.passed and not force:
            raise RegistryError(f"gate did not pass for {decision.challenger}; refusing to register "
                                f"(reasons: {decision.reasons})")
        bundle_dir = Path(bundle_dir)
        manifest = verify_bundle_dir(bundle_dir)
        files: dict[str, str] = manifest["files"]
        manifest_sha = sha256_file(bundle_dir / MANIFEST_FILE)
        lineage_tags = self._lineage_tags(manifest, lineage, training_run_id, pipeline_run, protocol)
        bundle_tags = {
            MODEL_NAME_TAG: str(manifest.get("model_name", UNKNOWN)),
            BUNDLE_VERSION_TAG: str(manifest.get("version", UNKNOWN)),
            N_ITEMS_TAG: str(manifest.get("n_items", UNKNOWN)),
            MANIFEST_SHA_TAG: manifest_sha,
        }

        own_run = run_id is None
        if own_run:
            run = self.client.create_run(
                self.experiment_id(), run_name=f"{REGISTER_STEP}-{pipeline_run}",
                tags={PIPELINE_RUN_TAG: pipeline_run, STEP_TAG: REGISTER_STEP},
            )
            run_id = run.info.run_id
        status = "FAILED"
        try:
            self.client.log_batch(
                run_id,
                params=[Param(f"lineage.{key.removeprefix('hyperrec.')}", value[:500])
                        for key, value in lineage_tags.items() if key != PIPELINE_RUN_TAG],
                tags=[RunTag(key, value) for key, value in {**lineage_tags, **bundle_tags}.items()],
            )
            self.client.log_artifacts(run_id, str(bundle_dir), BUNDLE_ARTIFACT_PATH)
            self.client.log_text(run_id, json.dumps(decision.to_dict(), indent=2, sort_keys=True),
                                 DECISION_ARTIFACT)
            source = self.client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + BUNDLE_ARTIFACT_PATH
            status = "FINISHED"
        finally:
            if own_run:
                self.client.set_terminated(run_id, status)

        try:
            self.client.create_registered_model(
                registered_name,
                tags={"hyperrec.gate_metric": decision.metric},
                description="hyperrec serving bundles (Triton repository + catalogue); see docs/REGISTRY.md",
            )
        except MlflowException as exc:
            if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise

        metric_tags = {metric_tag(name): repr(value)
                       for name, value in _numeric_leaves(challenger_metrics or {}).items()}
        metric_tags[metric_tag(decision.metric)] = repr(float(decision.challenger_value))
        file_tags = {FILE_TAG_PREFIX + name: digest for name, digest in files.items()
                     if _TAG_KEY_RE.match(FILE_TAG_PREFIX + name)}
        tags = {
            **lineage_tags,
            **bundle_tags,
            FILES_TAG: json.dumps(files, sort_keys=True),
            BUNDLE_LINEAGE_TAG: json.dumps(manifest.get("lineage", {}), sort_keys=True, default=str),
            **_gate_tags(decision),
            **metric_tags,
            **file_tags,
        }
        description = (
            f"{decision.challenger}: {decision.metric} {decision.challenger_value:.6g} "
            f"(best baseline {decision.best_baseline} {decision.best_baseline_value:.6g}, champion "
            f"{'none' if decision.champion_value is None else format(decision.champion_value, '.6g')}); "
            f"pipeline run {pipeline_run}"
        )
        mv = self.client.create_model_version(
            registered_name, source, run_id=run_id, tags=tags, description=description,
        )
        version = str(mv.version)
        self.client.set_registered_model_alias(registered_name, CHALLENGER, version)
        logger.info("registered %s v%s (%s, %d files) from %s; alias %s", registered_name, version,
                    decision.challenger, len(files), source, CHALLENGER)
        return self.version(registered_name, version)

    def _lineage_tags(self, manifest: Mapping[str, Any], lineage: Mapping[str, str] | None,
                      training_run_id: str | None, pipeline_run: str,
                      protocol: Mapping[str, Any] | None) -> dict[str, str]:
        given = {key if key.startswith("hyperrec.") else f"hyperrec.{key}": str(value)
                 for key, value in (lineage or {}).items() if value is not None}
        from_manifest = manifest.get("lineage") if isinstance(manifest.get("lineage"), Mapping) else {}
        tags = {PIPELINE_RUN_TAG: pipeline_run}
        for key in _LINEAGE_KEYS:
            short = key.removeprefix("hyperrec.")
            value = given.get(key) or from_manifest.get(short) or from_manifest.get(key)
            tags[key] = str(value) if value else UNKNOWN
        if training_run_id:
            tags[TRAINING_RUN_TAG] = str(training_run_id)
        tags[PROTOCOL_TAG] = sha256_json(dict(protocol)) if protocol else given.get(PROTOCOL_TAG, UNKNOWN)
        for key, value in given.items():
            tags.setdefault(key, value)
        return tags

    # ----------------------------------------------------------------------------------------- aliases

    def promote(self, registered_name: str, version: str | int) -> VersionInfo:
        """Point ``champion`` at ``version``; the old champion becomes ``previous-champion``.

        Promoting the current champion again changes nothing. The ``challenger`` alias is removed when it
        pointed at the promoted version.
        """
        target = self.version(registered_name, version)
        current = self.alias_version(registered_name, CHAMPION)
        if current is not None and current.version == target.version:
            logger.info("%s v%s is already the champion", registered_name, target.version)
            return target
        self.client.set_model_version_tag(registered_name, target.version, PREVIOUS_CHAMPION_TAG,
                                          current.version if current else "")
        self.client.set_model_version_tag(registered_name, target.version, PROMOTED_AT_TAG, _now())
        if current is not None:
            self.client.set_registered_model_alias(registered_name, PREVIOUS_CHAMPION, current.version)
        self.client.set_registered_model_alias(registered_name, CHAMPION, target.version)
        if self.aliases(registered_name).get(CHALLENGER) == target.version:
            self.client.delete_registered_model_alias(registered_name, CHALLENGER)
        logger.info("promoted %s v%s to %s (previous: %s)", registered_name, target.version, CHAMPION,
                    current.version if current else "none")
        return self.version(registered_name, target.version)

    def rollback(self, registered_name: str) -> VersionInfo:
        """Point ``champion`` back at ``previous-champion``; return the restored champion.

        ``previous-champion`` then moves one step further back (the version that the restored champion had
        replaced), or is removed when there is none.
        """
        aliases = self.aliases(registered_name)
        if CHAMPION not in aliases:
            raise RegistryError(f"{registered_name!r} has no {CHAMPION} to roll back")
        if PREVIOUS_CHAMPION not in aliases:
            raise RegistryError(f"{registered_name!r} has no {PREVIOUS_CHAMPION} to roll back to")
        bad, restored = aliases[CHAMPION], self.version(registered_name, aliases[PREVIOUS_CHAMPION])
        self.client.set_registered_model_alias(registered_name, CHAMPION, restored.version)
        self.client.set_model_version_tag(registered_name, bad, ROLLED_BACK_AT_TAG, _now())
        self.client.set_model_version_tag(registered_name, bad, ROLLED_BACK_TO_TAG, restored.version)
        older = restored.tags.get(PREVIOUS_CHAMPION_TAG, "")
        if older and older != restored.version and self._exists(registered_name, older):
            self.client.set_registered_model_alias(registered_name, PREVIOUS_CHAMPION, older)
        else:
            self.client.delete_registered_model_alias(registered_name, PREVIOUS_CHAMPION)
        logger.warning("rolled %s back from v%s to v%s", registered_name, bad, restored.version)
        return self.version(registered_name, restored.version)

    def _exists(self, registered_name: str, version: str) -> bool:
        try:
            self.version(registered_name, version)
        except RegistryError:
            return False
        return True

    # ----------------------------------------------------------------------------------------- download

    def download_bundle(self, registered_name: str, alias: str, dst: Path, *, overwrite: bool = False) -> Path:
        """Fetch the bundle an alias points to into ``dst`` and verify it against the registry's sha256s.

        The download lands in a temporary folder beside ``dst`` and is renamed into place only after
        verification, so ``dst`` never holds an unverified bundle. Returns ``dst``.
        """
        import mlflow

        info = self.alias_version(registered_name, alias)
        if info is None:
            raise RegistryError(f"registered model {registered_name!r} has no alias {alias!r}")
        try:
            expected = json.loads(info.tags[FILES_TAG])
            manifest_sha = info.tags[MANIFEST_SHA_TAG]
        except (KeyError, ValueError):
            raise RegistryError(f"{registered_name} v{info.version} was not registered by hyperrec "
                                f"(no {FILES_TAG}/{MANIFEST_SHA_TAG} tags); cannot verify it") from None
        dst = Path(dst)
        if dst.exists() and (not dst.is_dir() or any(dst.iterdir())) and not overwrite:
            raise RegistryError(f"{dst} exists and is not empty (pass overwrite=True to replace it)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=info.source, dst_path=str(staging), tracking_uri=self.tracking_uri))
            verify_bundle_dir(local, expected_files=expected, expected_manifest_sha256=manifest_sha)
            if dst.is_dir():
                shutil.rmtree(dst)
            elif dst.exists():
                dst.unlink()
            os.replace(local, dst)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("downloaded %s@%s (v%s) to %s; %d files verified", registered_name, alias, info.version,
                    dst, len(expected))
        return dst


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (SQLAlchemy: 3 slashes + relative or 4 + absolute)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


# --------------------------------------------------------------------------------------------- functions


def register_bundle(
    target: RegistryTarget,
    bundle_dir: Path,
    *,
    registered_name: str,
    decision: GateDecision,
    training_run_id: str | None,
    pipeline_run: str,
    **kwargs: Any,
) -> VersionInfo:
    """``BundleRegistry.register_bundle`` on ``target`` (a HyperrecConfig, a tracking URI or a registry)."""
    return BundleRegistry.from_target(target).register_bundle(
        bundle_dir, registered_name=registered_name, decision=decision, training_run_id=training_run_id,
        pipeline_run=pipeline_run, **kwargs,
    )


def promote(target: RegistryTarget, registered_name: str, version: str | int) -> VersionInfo:
    return BundleRegistry.from_target(target).promote(registered_name, version)


def rollback(target: RegistryTarget, registered_name: str) -> VersionInfo:
    return BundleRegistry.from_target(target).rollback(registered_name)


def champion_metric(target: RegistryTarget, registered_name: str, metric: str = DEFAULT_METRIC) -> float | None:
    return BundleRegistry.from_target(target).champion_metric(registered_name, metric)


def download_bundle(target: RegistryTarget, registered_name: str, alias: str, dst: Path, *,
                    overwrite: bool = False) -> Path:
    return BundleRegistry.from_target(target).download_bundle(registered_name, alias, dst, overwrite=overwrite)
