"""MLflow tracking of every step: parameters, metrics and artifacts, tagged with the pipeline run.

Each pipeline step opens its own MLflow run tagged ``hyperrec.pipeline_run`` so that the runs of one
pipeline execution can be found together in the MLflow UI (``tags."hyperrec.pipeline_run" = '...'``),
whether the steps ran as kfp.local subprocesses or as pods on a cluster.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig

logger = logging.getLogger(__name__)

PIPELINE_RUN_TAG = "hyperrec.pipeline_run"
STEP_TAG = "hyperrec.step"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested config into MLflow's flat ``section.key`` parameters."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _ensure_experiment(cfg: HyperrecConfig) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(cfg.tracking.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifact_root = None
    if cfg.tracking.tracking_uri is None:
        # Keep artifacts beside the sqlite database instead of ./mlruns of whatever the working directory is.
        artifact_root = (cfg.output_dir.parent / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(cfg.tracking.experiment, artifact_location=artifact_root)


@contextlib.contextmanager
def step_run(cfg: HyperrecConfig, step: str, pipeline_run: str) -> Iterator[Any]:
    """Open an MLflow run for one pipeline step and log the whole config as its parameters.

    With ``privacy.audit`` on, the step is also audited (``hyperrec.privacy.audit.record_step``).

    Args:
        cfg: the configuration (tracking URI and experiment); every value becomes a parameter.
        step: the step's name, tagged and in the run name.
        pipeline_run: the pipeline run id, tagged and in the run name.

    Yields:
        The active MLflow run.
    """
    import mlflow

    cfg.output_dir.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(cfg.mlflow_uri())
    experiment_id = _ensure_experiment(cfg)
    tags = {PIPELINE_RUN_TAG: pipeline_run, STEP_TAG: step}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{step}-{pipeline_run}", tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in flatten(cfg.model_dump(mode="json")).items()})
        logger.info("MLflow run %s (step %s) at %s", run.info.run_id, step, cfg.mlflow_uri())
        from hyperrec.privacy.audit import record_step

        record_step(cfg, step, pipeline_run)
        yield run


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log numeric metrics to the active run; MLflow keys may not contain '@', so it becomes '_at_'."""
    import mlflow

    clean = {key.replace("@", "_at_"): float(value) for key, value in metrics.items()}
    mlflow.log_metrics(clean, step=step)


def log_artifacts(path: Path, artifact_path: str | None = None) -> None:
    """Attach a file or folder to the active run."""
    import mlflow

    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    else:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)
