"""Step train_baselines: fit each classical baseline on the train split and save it."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hyperrec import tracking
from hyperrec.config import HyperrecConfig
from hyperrec.data.balancing import balanced_training_data
from hyperrec.data.prepared import PreparedData
from hyperrec.runtime import set_threads

logger = logging.getLogger(__name__)


def train_baselines_step(
    cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, models_dir: Path
) -> None:
    """Fit each classical baseline on the train split and save it under ``models_dir/<name>``.

    Args:
        cfg: the configuration (baseline settings, fairness balancing, threads, tracking).
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        prepared_dir: the prepared-data folder.
        models_dir: where each baseline's folder is written.
    """
    from hyperrec.models.registry import build_baselines

    set_threads(cfg.threads)
    data = balanced_training_data(PreparedData(prepared_dir), cfg.fairness)
    with tracking.step_run(cfg, "train_baselines", pipeline_run):
        for name, model in build_baselines(cfg).items():
            started = time.perf_counter()
            model.fit(data)
            seconds = time.perf_counter() - started
            model.save(models_dir / name)
            tracking.log_metrics({f"{name}.fit_seconds": seconds})
            logger.info("fitted %s in %.1f s", name, seconds)
