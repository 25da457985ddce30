"""Step evaluate: every saved model on the test split -> metrics.json, metrics.md, recommendations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hyperrec import tracking
from hyperrec.config import HyperrecConfig
from hyperrec.data.prepared import PreparedData
from hyperrec.runtime import set_threads

logger = logging.getLogger(__name__)

HEADLINE = ("hr@10", "ndcg@10")


def evaluate_step(
    cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, models_dirs: list[Path], evaluation_dir: Path
) -> dict[str, Any]:
    """Evaluate every saved model on the test split; write metrics.json, metrics.md and recommendations.

    Args:
        cfg: the configuration (evaluation and fairness settings, seed, threads, tracking).
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        prepared_dir: the prepared-data folder.
        models_dirs: folders holding one saved model per subfolder.
        evaluation_dir: where the outputs (and, with ``fairness.audit``, the fairness report) are written.

    Returns:
        The metrics, as written to metrics.json.
    """
    from hyperrec.evaluation.harness import evaluate
    from hyperrec.evaluation.tables import metrics_table
    from hyperrec.models.registry import load_model

    set_threads(cfg.threads)
    data = PreparedData(prepared_dir)
    models = {
        path.name: load_model(path)
        for models_dir in models_dirs
        for path in sorted(models_dir.iterdir())
        if path.is_dir()
    }
    with tracking.step_run(cfg, "evaluate", pipeline_run):
        result = evaluate(
            models, data, cfg.evaluation, evaluation_dir, split="test", seed=cfg.seed, segments=data.segments
        )
        (evaluation_dir / "metrics.md").write_text(metrics_table(result) + "\n", encoding="utf-8")
        tracking.log_metrics(headline_metrics(result))
        tracking.log_artifacts(evaluation_dir / "metrics.json", artifact_path="evaluation")
        tracking.log_artifacts(evaluation_dir / "metrics.md", artifact_path="evaluation")
        if cfg.fairness.audit:
            from hyperrec.evaluation.audit import REPORT_HTML, audit_after_evaluation

            tracking.log_metrics(audit_after_evaluation(cfg, prepared_dir, evaluation_dir, result))
            for name in ("fairness.json", "fairness.md", REPORT_HTML):
                tracking.log_artifacts(evaluation_dir / name, artifact_path="evaluation")
    return result


def headline_metrics(result: dict[str, Any]) -> dict[str, float]:
    """``<model>.<protocol>.<metric>`` for the headline metrics of every model in a metrics.json."""
    return {
        f"{model}.{protocol}.{metric}": float(values[protocol][metric])
        for model, values in result["models"].items()
        for protocol in ("full", "sampled")
        for metric in HEADLINE
    }
