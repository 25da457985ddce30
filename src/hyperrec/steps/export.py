"""Step export: the served model and its catalogue -> a serving bundle with lineage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hyperrec import tracking
from hyperrec.config import HyperrecConfig
from hyperrec.data.prepared import REPORT_JSON, PreparedData
from hyperrec.hashing import sha256_file

logger = logging.getLogger(__name__)


def export_step(
    cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, lm_models_dir: Path, bundle_dir: Path
) -> dict[str, Any]:
    """Export the served model (``modeling.serve``) with its catalogue into a serving bundle.

    Args:
        cfg: the configuration (``modeling.serve``, max history, predictor settings, tracking).
        pipeline_run: the pipeline run id; also the bundle's version.
        prepared_dir: the prepared-data folder (catalogue and data report).
        lm_models_dir: the folder holding the trained language models.
        bundle_dir: where the bundle is written.

    Returns:
        The bundle manifest.
    """
    from hyperrec.export.next_item import export_next_item_bundle
    from hyperrec.export.triton_config import TritonSettings
    from hyperrec.models.registry import load_model

    data = PreparedData(prepared_dir)
    model = load_model(lm_models_dir / cfg.modeling.serve)
    with tracking.step_run(cfg, "export", pipeline_run) as run:
        manifest = export_next_item_bundle(
            model, data, bundle_dir, model_name="ranker", version=pipeline_run,
            max_history=cfg.modeling.max_history, triton=TritonSettings.from_predictor(cfg.serving.predictor),
            lineage={
                "pipeline_run": pipeline_run,
                "training_run_id": run.info.run_id,
                "data_report_sha256": sha256_file(prepared_dir / REPORT_JSON),
            },
        )
        tracking.log_metrics(
            {"onnx_vs_torch_max_abs_diff": manifest["lineage"]["onnx_vs_torch_max_abs_diff"]}
        )
        tracking.log_artifacts(bundle_dir / "manifest.json", artifact_path="bundle")
    return manifest
