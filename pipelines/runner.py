"""Compile pipelines to YAML for a cluster, or run them embedded with ``kfp.local.SubprocessRunner``.

Embedded runs publish their artifacts into the stable ``cfg.output_dir`` (layout in docs/OUTPUTS.md), so
users and tests find results in one documented place instead of KFP's per-task artifact folders.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kfp import compiler, local

from hyperrec.config import HyperrecConfig
from hyperrec.monitoring.launchers import RetrainRequest
from hyperrec.pipelines.retraining.pipeline import PIPELINE_NAME as RETRAINING_NAME
from hyperrec.pipelines.retraining.pipeline import build_retraining_pipeline
from hyperrec.pipelines.task_logs import task_logs
from hyperrec.pipelines.training.pipeline import PIPELINE_NAME, build_training_pipeline

logger = logging.getLogger(__name__)

PUBLISHED = {
    "prepared": "data",
    "models": "models/baselines",
    "lm_models": "models/language",
    "evaluation": "evaluation",
    "bundle": "bundle",
}


@dataclass(frozen=True)
class LocalRun:
    """Where an embedded run left its results."""

    pipeline_run: str
    output_dir: Path
    wall_seconds: float


def compile_pipelines(cfg: HyperrecConfig, output_dir: Path) -> list[Path]:
    """Write every pipeline as KFP IR YAML into ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{PIPELINE_NAME}.yaml"
    compiler.Compiler().compile(build_training_pipeline(cfg), package_path=str(path))
    retraining = output_dir / f"{RETRAINING_NAME}.yaml"
    compiler.Compiler().compile(build_retraining_pipeline(cfg), package_path=str(retraining))
    logger.info("compiled %s and %s", path, retraining)
    return [path, retraining]


def new_pipeline_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def run_local(cfg: HyperrecConfig, pipeline_run: str | None = None) -> LocalRun:
    """Run the training pipeline in subprocesses of this interpreter and publish its outputs."""
    pipeline_run = pipeline_run or new_pipeline_run_id()
    pipeline_root = cfg.output_dir.parent / "kfp" / pipeline_run
    started = time.perf_counter()
    with _embedded(pipeline_root):
        task = build_training_pipeline(cfg)(config_yaml=cfg.to_json(), pipeline_run=pipeline_run)
    wall = time.perf_counter() - started
    _publish(task, cfg.output_dir, pipeline_run, pipeline_root, wall)
    return LocalRun(pipeline_run=pipeline_run, output_dir=cfg.output_dir, wall_seconds=wall)


@contextmanager
def _embedded(pipeline_root: Path) -> Iterator[None]:
    """``kfp.local``'s subprocess runner under ``pipeline_root``, with each task's output in its log file."""
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    with warnings.catch_warnings():
        # The local runner warns that GPU requests and the cluster image have no effect here; that is
        # intended.
        warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        with task_logs(pipeline_root / "logs"):
            yield


def _publish(task, output_dir: Path, pipeline_run: str, pipeline_root: Path, wall: float) -> None:
    staging = output_dir.with_name(output_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for output_name, folder in PUBLISHED.items():
        shutil.copytree(Path(task.outputs[output_name].path), staging / folder)
    (staging / "registration.json").write_text(task.outputs["registration"], encoding="utf-8")
    (staging / "run.json").write_text(
        json.dumps(
            {
                "pipeline_run": pipeline_run,
                "pipeline_root": str(pipeline_root.resolve()),
                "wall_seconds": wall,
            },
            indent=2,
        )
    )
    # Swap in one step so a reader never sees half of an old run and half of a new one.
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)
    logger.info("published run %s to %s", pipeline_run, output_dir)


def run_retraining_local(
    cfg: HyperrecConfig,
    *,
    reference_uri: str,
    current_uri: str,
    data_window: str = "{}",
    trigger_reason: str = "manual",
    pipeline_run: str | None = None,
    force_retrain: bool = False,
) -> str:
    """Run the retraining pipeline embedded; return its pipeline-run id (its steps are tagged with it in
    MLflow).

    The retraining tasks run only when the drift check finds drift or ``force_retrain`` is set; the registry
    records any new challenger.
    """
    pipeline_run = pipeline_run or new_pipeline_run_id()
    with _embedded(cfg.output_dir.parent / "kfp" / pipeline_run):
        build_retraining_pipeline(cfg)(
            config_yaml=cfg.to_json(), pipeline_run=pipeline_run, reference_uri=reference_uri,
            current_uri=current_uri, data_window=data_window, trigger_reason=trigger_reason,
            force_retrain=force_retrain,
        )
    return pipeline_run


def local_training_runner(cfg: HyperrecConfig) -> Callable[[RetrainRequest], str]:
    """An embedded launcher callable: the training pipeline on the request's data window, with ``kfp.local``.

    The trigger has already decided on drift, so this runs the train-and-register part directly (a cluster
    launcher starts ``hyperrec-retraining``, whose own drift check guards runs started by schedule).
    """

    def run(request: RetrainRequest) -> str:
        from hyperrec.steps.data_prep import with_data_window

        logger.info("starting embedded retraining %s: %s", request.pipeline_run, request.reason)
        windowed = with_data_window(cfg, json.dumps(dict(request.data_window)))
        return run_local(windowed, pipeline_run=request.pipeline_run).pipeline_run

    return run
