"""The pipeline steps as plain functions: the CLI and the KFP components both call these.

Each step reads its inputs from folders, writes its outputs to folders, and records itself in MLflow, so the
same code runs as a kfp.local subprocess, as a pod on a cluster, or straight from ``hyperrec <step>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from hyperrec import tracking
from hyperrec.config import HyperrecConfig
from hyperrec.data.balancing import balanced_training_data
from hyperrec.data.prepared import QUARANTINE_FILE, REPORT_JSON, REPORT_MD, PreparedData
from hyperrec.hashing import sha256_file
from hyperrec.runtime import set_threads

logger = logging.getLogger(__name__)

HEADLINE = ("hr@10", "ndcg@10")


def with_data_window(cfg: HyperrecConfig, data_window: str) -> HyperrecConfig:
    """``cfg`` restricted to a retraining window: JSON ``{"start_unix": ..., "end_unix": ...}`` ("{}": as is)."""
    window = json.loads(data_window or "{}")
    data = cfg.data.model_copy(update={
        "window_start_unix": window.get("start_unix", cfg.data.window_start_unix),
        "window_end_unix": window.get("end_unix", cfg.data.window_end_unix),
    })
    return cfg.model_copy(update={"data": data})


def data_prep_step(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path) -> PreparedData:
    """Run data prep into ``prepared_dir`` and record the report in MLflow."""
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


def train_baselines_step(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, models_dir: Path) -> None:
    """Fit each classical baseline on the train split and save it under ``models_dir/<name>``."""
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


def fine_tune_step(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, models_dir: Path) -> None:
    """Train the language models of ``modeling.train`` (in the configured profile) into ``models_dir/<name>``."""
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
                if warm is not None and (warm / "model.json").exists() and name.startswith("next_item"):
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


def export_step(
    cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, lm_models_dir: Path, bundle_dir: Path
) -> dict[str, Any]:
    """Export the served model (``modeling.serve``) with its catalogue into a serving bundle."""
    from hyperrec.export.next_item import export_next_item_bundle
    from hyperrec.models.registry import load_model

    data = PreparedData(prepared_dir)
    model = load_model(lm_models_dir / cfg.modeling.serve)
    with tracking.step_run(cfg, "export", pipeline_run) as run:
        manifest = export_next_item_bundle(
            model, data, bundle_dir, model_name="ranker", version=pipeline_run,
            max_history=cfg.modeling.max_history,
            lineage={
                "pipeline_run": pipeline_run,
                "training_run_id": run.info.run_id,
                "data_report_sha256": sha256_file(prepared_dir / REPORT_JSON),
            },
        )
        tracking.log_metrics({"onnx_vs_torch_max_abs_diff": manifest["lineage"]["onnx_vs_torch_max_abs_diff"]})
        tracking.log_artifacts(bundle_dir / "manifest.json", artifact_path="bundle")
    return manifest


def evaluate_step(
    cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, models_dirs: list[Path], evaluation_dir: Path
) -> dict[str, Any]:
    """Evaluate every saved model on the test split; write metrics.json, metrics.md and recommendations."""
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


def _numeric_leaves(tree: Any, prefix: str) -> dict[str, float]:
    if isinstance(tree, dict):
        leaves: dict[str, float] = {}
        for key, value in tree.items():
            leaves.update(_numeric_leaves(value, f"{prefix}{key}."))
        return leaves
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return {prefix.rstrip(".").replace(" ", "_"): float(tree)}
    return {}
