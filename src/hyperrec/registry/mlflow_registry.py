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

Version tags: ``hyperrec.registry.version_tags``.

MLflow is imported lazily, so ``import hyperrec.registry`` stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from hyperrec.bundle_verify import MANIFEST_FILE
from hyperrec.config import HyperrecConfig
from hyperrec.hashing import sha256_file
from hyperrec.registry.gate import DEFAULT_METRIC, GateDecision, canonical_metric
from hyperrec.registry.integrity import RegistryError, verify_bundle_dir
from hyperrec.registry.version_tags import (
    FILES_TAG,
    GATE_TAG_PREFIX,
    MANIFEST_SHA_TAG,
    PREVIOUS_CHAMPION_TAG,
    PROMOTED_AT_TAG,
    ROLLED_BACK_AT_TAG,
    ROLLED_BACK_TO_TAG,
    VersionInfo,
    bundle_tags,
    lineage_tags,
    metric_tag,
    version_description,
    version_tags,
)
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

REGISTER_STEP = "register_bundle"



RegistryTarget = Union[HyperrecConfig, str, "BundleRegistry"]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _error_code(exc: Exception) -> str | None:
    return getattr(exc, "error_code", None)


# --------------------------------------------------------------------------------------------- registry


class BundleRegistry:
    """One MLflow tracking/registry URI and experiment; every registry operation is a method."""

    def __init__(self, tracking_uri: str, *, experiment: str = "hyperrec",
                 artifact_location: str | None = None,
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
                raise RegistryError(f"registered model {registered_name!r} has no version "
                f"{version}") from None
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

        Args:
            bundle_dir: the bundle folder, verified against its manifest first.
            registered_name: the registered model that gets the new version.
            decision: the gate's decision; a failed one is refused unless ``force``.
            training_run_id: the MLflow run that trained the model, or None.
            pipeline_run: the pipeline run id.
            run_id: log into this (active) run, e.g. the validate_and_register step's; otherwise a run
                tagged ``hyperrec.step=register_bundle`` is created and finished here.
            lineage: lineage tag keys (``hyperrec.data_report_sha256``, ``hyperrec.config_sha256``, ...) ->
                values; the manifest's ``lineage`` fills what is not given (keys with or without
                ``hyperrec.``).
            challenger_metrics: the challenger's metrics.json entry (its numbers become metric tags).
            protocol: the metrics.json protocol block (hashed into ``hyperrec.eval.protocol_sha256``).
            force: register even when the decision failed.

        Returns:
            The new version, with its tags.
        """
        if not decision.passed and not force:
            raise RegistryError(f"gate did not pass for {decision.challenger}; refusing to register "
                                f"(reasons: {decision.reasons})")
        bundle_dir = Path(bundle_dir)
        manifest = verify_bundle_dir(bundle_dir)
        lineage_values = lineage_tags(manifest, lineage, training_run_id, pipeline_run, protocol)
        bundle_values = bundle_tags(manifest, sha256_file(bundle_dir / MANIFEST_FILE))
        run_id, source = self._log_bundle_run(bundle_dir, decision, pipeline_run, run_id,
                                              {**lineage_values, **bundle_values}, lineage_values)
        self._ensure_registered_model(registered_name, decision.metric)
        mv = self.client.create_model_version(
            registered_name, source, run_id=run_id,
            tags=version_tags(manifest, lineage_values, bundle_values, decision, challenger_metrics),
            description=version_description(decision, pipeline_run),
        )
        version = str(mv.version)
        self.client.set_registered_model_alias(registered_name, CHALLENGER, version)
        logger.info("registered %s v%s (%s, %d files) from %s; alias %s", registered_name, version,
                    decision.challenger, len(manifest["files"]), source, CHALLENGER)
        return self.version(registered_name, version)

    def _log_bundle_run(self, bundle_dir: Path, decision: GateDecision, pipeline_run: str, run_id: str | None,
                        run_tags: Mapping[str, str], lineage: Mapping[str, str]) -> tuple[str, str]:
        """Log the bundle and the decision into ``run_id`` (or a run of its own); return run id and source
        URI."""
        from mlflow.entities import Param, RunTag

        own_run = run_id is None
        if own_run:
            run = self.client.create_run(
                self.experiment_id(), run_name=f"{REGISTER_STEP}-{pipeline_run}",
                tags={PIPELINE_RUN_TAG: pipeline_run, STEP_TAG: REGISTER_STEP},
            )
            run_id = run.info.run_id
        assert run_id is not None
        status = "FAILED"
        try:
            self.client.log_batch(
                run_id,
                params=[Param(f"lineage.{key.removeprefix('hyperrec.')}", value[:500])
                        for key, value in lineage.items() if key != PIPELINE_RUN_TAG],
                tags=[RunTag(key, value) for key, value in run_tags.items()],
            )
            self.client.log_artifacts(run_id, str(bundle_dir), BUNDLE_ARTIFACT_PATH)
            self.client.log_text(run_id, json.dumps(decision.to_dict(), indent=2, sort_keys=True),
                                 DECISION_ARTIFACT)
            source = self.client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + BUNDLE_ARTIFACT_PATH
            status = "FINISHED"
        finally:
            if own_run:
                self.client.set_terminated(run_id, status)
        return run_id, source

    def _ensure_registered_model(self, registered_name: str, gate_metric: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(
                registered_name,
                tags={"hyperrec.gate_metric": gate_metric},
                description="hyperrec serving bundles (Triton repository + catalogue); see docs/REGISTRY.md",
            )
        except MlflowException as exc:
            if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise

    # ----------------------------------------------------------------------------------------- aliases

    def promote(self, registered_name: str, version: str | int) -> VersionInfo:
        """Point ``champion`` at ``version``; the old champion becomes ``previous-champion``.

        Promoting the current champion again changes nothing. The ``challenger`` alias is removed when it
        pointed at the promoted version.

        Args:
            registered_name: the registered model.
            version: the version to promote.

        Returns:
            The promoted version, as now registered.
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

    def download_bundle(self, registered_name: str, alias: str, dst: Path, *,
                        overwrite: bool = False) -> Path:
        """Fetch the bundle an alias points to into ``dst`` and verify it against the registry's sha256s.

        The download lands in a temporary folder beside ``dst`` and is renamed into place only after
        verification, so ``dst`` never holds an unverified bundle. Returns ``dst``.
        """
        import mlflow

        info = self.alias_version(registered_name, alias)
        if info is None:
            raise RegistryError(f"registered model {registered_name!r} has no alias {alias!r}")
        tags = info.bundle_files(MANIFEST_SHA_TAG)
        if tags is None:
            raise RegistryError(f"{registered_name} v{info.version} was not registered by hyperrec "
                                f"(no {FILES_TAG}/{MANIFEST_SHA_TAG} tags); cannot verify it")
        expected, manifest_sha = tags
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
