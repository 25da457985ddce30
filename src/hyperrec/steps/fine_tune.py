"""Step fine_tune: train the language-model recommenders of ``modeling.train`` (DDP under torchrun)."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from hyperrec import tracking
from hyperrec.config import HyperrecConfig
from hyperrec.data.balancing import balanced_training_data
from hyperrec.data.prepared import PreparedData
from hyperrec.model_names import MODEL_FILE, NEXT_ITEM_MODELS
from hyperrec.runtime import set_threads

logger = logging.getLogger(__name__)


def fine_tune_step(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, models_dir: Path) -> None:
    """Train the language models of ``modeling.train`` (in the configured profile) into ``models_dir/<name>``.

    Args:
        cfg: the configuration (``modeling`` settings and profile, fairness balancing, threads, tracking).
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        prepared_dir: the prepared-data folder.
        models_dir: where each model's folder is written (by the main process only).
    """
    from hyperrec.modeling import distributed
    from hyperrec.modeling.build import build_language_model
    from hyperrec.modeling.settings import apply_profile

    modeling = apply_profile(cfg.modeling, cfg.modeling.runtime.profile)
    set_threads(modeling.runtime.threads or cfg.threads)
    data = balanced_training_data(PreparedData(prepared_dir), cfg.fairness)
    fitted: dict[str, Any] = {}
    # Under torchrun every process trains (DDP); only the main one tracks and writes the models.
    with distributed.session():
        main = distributed.is_main()
        with (tracking.step_run(cfg, "fine_tune", pipeline_run) if main else contextlib.nullcontext()):
            for name in modeling.train:
                model = build_language_model(name, modeling, fitted)
                started = time.perf_counter()
                on_metrics = _metrics_logger(name) if main else None
                warm = modeling.warm_start_dir / name if modeling.warm_start_dir else None
                if warm is not None and (warm / MODEL_FILE).exists() and name in NEXT_ITEM_MODELS:
                    model.fit(data, on_metrics=on_metrics, warm_start=warm)
                else:
                    model.fit(data, on_metrics=on_metrics)
                seconds = time.perf_counter() - started
                fitted[name] = model
                if main:
                    model.save(models_dir / name)
                    tracking.log_metrics({f"{name}.fit_seconds": seconds})
                logger.info("trained %s in %.1f s", name, seconds)


def _metrics_logger(prefix: str):
    def log(metrics: dict[str, float], step: int) -> None:
        numeric = {f"{prefix}.{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}
        tracking.log_metrics(numeric, step=step)

    return log
