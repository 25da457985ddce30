"""Step drift_monitor: the two windows of ``cfg.monitoring`` -> drift report and summary, recorded in
MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperrec.monitoring.results import DriftResult
from hyperrec.monitoring.sources import Bounds, Sources, check_sources


def drift_monitor_step(
    cfg: Any,
    pipeline_run: str,
    reference: Path,
    current: Path,
    report_path: Path,
    summary_path: Path,
    force_retrain: bool = False,
) -> DriftResult:
    """The KFP component's body: windows from ``cfg.monitoring``, outputs to the given paths, an MLflow run.

    ``force_retrain`` (a run whose retraining was decided before it started: the trigger's, the weekly
    schedule's) is recorded beside the scores, so the run says why it retrained without drift.

    Args:
        cfg: the configuration (``monitoring`` settings, tracking).
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        reference: the reference events (file or folder).
        current: the current events (file or folder).
        report_path: where the HTML report is written.
        summary_path: where the summary JSON is written.
        force_retrain: whether retraining was decided before this run.

    Returns:
        The drift result.
    """
    from hyperrec import tracking

    settings = cfg.monitoring
    with tracking.step_run(cfg, "drift_monitor", pipeline_run):
        sources = Sources(
            reference=reference,
            current=current,
            reference_table=settings.sources.reference_table,
            items=settings.sources.items,
            item_embeddings=settings.sources.item_embeddings,
        )
        result = check_sources(sources, Bounds(), settings)
        result.save(report_path=report_path, summary_path=summary_path)
        metrics = {f"drift.{name}.score": c.score for name, c in result.checks.items() if c.score is not None}
        metrics["drift.detected"] = float(result.drift_detected)
        metrics["retrain.forced"] = float(force_retrain)
        if result.quality.get("value") is not None:
            metrics["quality.ctr"] = result.quality["value"]
        tracking.log_metrics(metrics)
        tracking.log_artifacts(summary_path, artifact_path="drift")
        tracking.log_artifacts(report_path, artifact_path="drift")
    return result
