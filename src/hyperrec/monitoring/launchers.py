"""How a retraining run is started: the request, and the launchers (KFP API or embedded).

``KfpLauncher`` wraps a ``kfp.Client`` (or anything with its ``create_experiment``, ``run_pipeline`` and
``get_run`` methods - unit tests inject ``FakeKfpClient``, which checks every run against the compiled
pipeline, because no KFP API server runs there). Every KFP run carries the request's parameters plus the
object-store URIs ``reference_uri`` / ``current_uri`` that the retraining pipeline's importers download; when
the request carries the checked window itself (read from a local path such as the CronJob's feedback PVC), it
is uploaded first as ``<current_uri>/<pipeline_run>/current.parquet`` and the run imports that folder.
Settings that could only start runs the KFP API rejects, or runs whose importers get nothing, are refused up
front. ``LocalLauncher`` wraps an injected callable that runs the pipeline embedded (e.g. through
``kfp.local``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hyperrec.errors import ConfigError
from hyperrec.monitoring.settings import KfpSettings


@dataclass(frozen=True)
class RetrainRequest:
    """What a retraining run is started with: the new data window and why."""

    reason: str
    data_window: Mapping[str, Any]
    pipeline_run: str
    config_yaml: str | None = None
    #: The current window's rows as checked (a DataFrame), when they come from a local source that the run's
    #: pods cannot read: a KFP launcher uploads them and the run imports that snapshot.
    current_window: Any = field(default=None, compare=False, repr=False)

    def parameters(self) -> dict[str, Any]:
        """Pipeline parameters of the decision: pipeline_run, data_window (JSON), trigger_reason,
        force_retrain (the trigger has decided, so the pipeline's own drift check must not veto it: a run
        started for low quality has no drift), and config_yaml when given.

        Returns:
            Parameter name -> value.
        """
        params: dict[str, Any] = {
            "pipeline_run": self.pipeline_run,
            "data_window": json.dumps(dict(self.data_window), sort_keys=True, separators=(",", ":")),
            "trigger_reason": self.reason,
            "force_retrain": True,
        }
        if self.config_yaml is not None:
            params["config_yaml"] = self.config_yaml
        return params


class RetrainLauncher(Protocol):
    """Starts retraining runs and reports their state."""

    name: str

    def launch(self, request: RetrainRequest) -> str:
        """Start a run; return its id."""

    def run_state(self, run_id: str) -> str:
        """State of a run started earlier (KFP state names)."""

    def is_active(self, state: str) -> bool:
        """Whether a run in this state is still going (blocks a new trigger)."""


class KfpClientLike(Protocol):
    """The part of ``kfp.Client`` the launcher uses."""

    def create_experiment(
        self, name: str, description: str | None = None, namespace: str | None = None
    ) -> Any: ...

    def run_pipeline(self, experiment_id: str, job_name: str, **kwargs: Any) -> Any: ...

    def get_run(self, run_id: str) -> Any: ...


def _check_kfp_settings(settings: KfpSettings) -> None:
    """Refuse settings that could only start runs the KFP API rejects or the pipeline's importers cannot
    read."""
    if (settings.pipeline_id is None) != (settings.pipeline_version_id is None):
        raise ConfigError("monitoring.trigger.kfp: kfp.Client.run_pipeline needs both pipeline_id and "
                          "pipeline_version_id (or neither, with pipeline_package)")
    if settings.pipeline_version_id is None and settings.pipeline_package is None:
        raise ConfigError(
            "monitoring.trigger.kfp needs pipeline_id and pipeline_version_id (an uploaded pipeline) or "
            "pipeline_package (compiled YAML) to start runs"
        )
    missing = [f"monitoring.trigger.kfp.{key}" for key in ("reference_uri", "current_uri")
               if getattr(settings, key) is None]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} must name the object-store location (gs://, s3://, minio://) that the "
            "retraining pipeline's importers download: its pods cannot read a path of the pod that starts "
            "the run"
        )


class KfpLauncher:
    """Creates runs of the compiled (or uploaded) retraining pipeline through the KFP API.

    Every run carries the request's parameters plus ``reference_uri`` and ``current_uri`` from the settings.
    """

    name = "kfp"

    def __init__(self, client: KfpClientLike, settings: KfpSettings) -> None:
        _check_kfp_settings(settings)
        self.client, self.settings = client, settings
        self._experiment_id: str | None = None

    @classmethod
    def from_settings(cls, settings: KfpSettings) -> KfpLauncher:
        """A launcher over a real ``kfp.Client`` for ``settings.host``."""
        import kfp

        return cls(kfp.Client(host=settings.host, namespace=settings.namespace), settings)

    def launch(self, request: RetrainRequest) -> str:
        """Start one retraining run; the KFP experiment is created on the first launch.

        Args:
            request: the decision's parameters and, when given, the checked window's rows to upload.

        Returns:
            The KFP run id.
        """
        if self._experiment_id is None:
            experiment = self.client.create_experiment(name=self.settings.experiment,
                                                       namespace=self.settings.namespace)
            self._experiment_id = experiment.experiment_id
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        uploaded = self.settings.pipeline_version_id is not None
        run = self.client.run_pipeline(
            experiment_id=self._experiment_id,
            job_name=f"{self.settings.run_name_prefix}-{stamp}",
            pipeline_package_path=None if uploaded else str(self.settings.pipeline_package),
            params={**request.parameters(), "reference_uri": self.settings.reference_uri,
                    "current_uri": self._current_uri(request)},
            pipeline_id=self.settings.pipeline_id if uploaded else None,
            version_id=self.settings.pipeline_version_id if uploaded else None,
            enable_caching=False,
            service_account=self.settings.service_account,
        )
        return str(run.run_id)

    def _current_uri(self, request: RetrainRequest) -> str | None:
        """The snapshot of the checked window under ``current_uri`` when the request carries one (the same
        object key on a retried launch), else ``current_uri`` itself."""
        if request.current_window is None:
            return self.settings.current_uri
        from hyperrec.monitoring.object_store import upload_snapshot

        return upload_snapshot(request.current_window, str(self.settings.current_uri), request.pipeline_run)

    def run_state(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).state)

    def is_active(self, state: str) -> bool:
        return state in self.settings.active_states


class LocalLauncher:
    """Runs the retraining pipeline embedded through an injected callable (returns the run id when done).

    ``state`` (optional) reports the state of an asynchronous runner's run; without it a returned run is over.
    """

    name = "local"
    ACTIVE = ("PENDING", "RUNNING")

    def __init__(
        self, runner: Callable[[RetrainRequest], str], state: Callable[[str], str] | None = None
    ) -> None:
        self.runner, self.state = runner, state

    def launch(self, request: RetrainRequest) -> str:
        return str(self.runner(request))

    def run_state(self, run_id: str) -> str:
        return self.state(run_id) if self.state is not None else "SUCCEEDED"

    def is_active(self, state: str) -> bool:
        return state in self.ACTIVE
