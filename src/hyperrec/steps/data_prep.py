"""Step data_prep: raw interactions -> the prepared folder (splits, catalogue, report), recorded in MLflow."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hyperrec import tracking
from hyperrec.config import HyperrecConfig
from hyperrec.data.prepared import QUARANTINE_FILE, REPORT_JSON, REPORT_MD, PreparedData
from hyperrec.runtime import set_threads

logger = logging.getLogger(__name__)


def with_data_window(cfg: HyperrecConfig, data_window: str) -> HyperrecConfig:
    """``cfg`` restricted to a retraining window: JSON ``{"start_unix": ..., "end_unix": ...}`` ("{}": as
    is)."""
    window = json.loads(data_window or "{}")
    data = cfg.data.model_copy(update={
        "window_start_unix": window.get("start_unix", cfg.data.window_start_unix),
        "window_end_unix": window.get("end_unix", cfg.data.window_end_unix),
    })
    return cfg.model_copy(update={"data": data})


def data_prep_step(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path) -> PreparedData:
    """Run data prep into ``prepared_dir`` and record the report in MLflow.

    Args:
        cfg: the configuration (data and prep settings, threads, tracking).
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        prepared_dir: where the prepared data and its report are written.

    Returns:
        Read access to the prepared data.
    """
    from hyperrec.data.prep import run_data_prep

    set_threads(cfg.threads)
    with tracking.step_run(cfg, "data_prep", pipeline_run):
        data = run_data_prep(cfg, prepared_dir)
        report = json.loads((prepared_dir / REPORT_JSON).read_text(encoding="utf-8"))
        tracking.log_metrics(_numeric_leaves(report, prefix="data."))
        for name in (REPORT_JSON, REPORT_MD, QUARANTINE_FILE):
            if (prepared_dir / name).exists():
                tracking.log_artifacts(prepared_dir / name, artifact_path="data_report")
    return data


def _numeric_leaves(tree: Any, prefix: str) -> dict[str, float]:
    if isinstance(tree, dict):
        leaves: dict[str, float] = {}
        for key, value in tree.items():
            leaves.update(_numeric_leaves(value, f"{prefix}{key}."))
        return leaves
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return {prefix.rstrip(".").replace(" ", "_"): float(tree)}
    return {}
