"""The quality benchmark: every baseline and language model trained and evaluated in one run.

``run_quality(cfg, out_dir)`` runs the pipeline steps (``hyperrec.steps``) in this process: data prep (or a
given prepared folder), the classical baselines, the language models of ``QUALITY_MODELS`` (plus
``ENCODER_MODELS`` with ``with_encoders=True``; they take long on CPU), and the evaluation of all of them on
the test split under both protocols. Outputs in ``out_dir``:

- ``data/``: the prepared data (unless ``prepared`` was given); ``models/baselines``, ``models/language``;
  ``evaluation/``: what ``evaluate_step`` writes (metrics.json, metrics.md, recommendations);
- ``metrics.json``: ``evaluation/metrics.json`` plus ``hr@K_se`` (per-user standard error of the hit rate,
  which is a 0/1 value per user, so ``sqrt(p(1-p)/(n-1))``) and a ``benchmark`` block;
- ``metrics.md``: the headline table and the full metrics table;
- ``summary.json``: ratios of each language model to the best baseline (full and sampled HR@10 and
  NDCG@10), whether every fine-tuned model beats zero-shot, whether next_item_lm beats next_item_id (with
  the paired per-user difference of the full-protocol metrics), training seconds and examples/s per model,
  wall time;
- ``report.html``: one self-contained page with the tables and a bar plot (PNG embedded as base64).

MLflow runs of the steps land in ``out_dir/mlflow.db`` unless ``tracking.tracking_uri`` is set. The steps run
in ``hyperrec.benchmarks.stages``, the statistics are ``hyperrec.benchmarks.summary``'s, the tables and the
page ``hyperrec.benchmarks.report``'s.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperrec.benchmarks.report import (
    METRICS_FILE,
    REPORT_FILE,
    TABLE_FILE,
    fmt,
    headline_plot,
    headline_table,
    html_list,
    html_page,
    load_text,
    training_columns,
)
from hyperrec.benchmarks.stages import RunClock, bench_config, new_run_id, prepare, train_and_evaluate
from hyperrec.benchmarks.summary import add_hit_rate_errors, quality_summary
from hyperrec.config import HyperrecConfig
from hyperrec.data.prepared import PreparedData

logger = logging.getLogger(__name__)

#: Language models of the default run, in training order.
QUALITY_MODELS = ("next_item_lm", "next_item_id", "zero_shot_lm")
#: Added by ``with_encoders=True`` (tens of minutes on 2 CPU cores).
ENCODER_MODELS = ("bi_encoder", "cross_encoder")
SUMMARY_FILE = "summary.json"


def _paired(entry: Mapping[str, Any], note: str = "") -> str:
    """A paired per-user difference: ``+0.0123 ±0.0045 (z 2.7)``, ``note`` added inside the parentheses."""
    return f"{entry['difference']:+.4f} ±{entry['se']:.4f} (z {entry['z']:.1f}{note})"


def _yes_no(claim: str, verdicts: Mapping[str, bool]) -> list[str]:
    """``<claim> on <metric>: yes`` (or ``no``) per metric."""
    return [f"{claim} on {key}: {'yes' if value else 'no'}" for key, value in verdicts.items()]


def _findings(summary: Mapping[str, Any]) -> list[str]:
    lines = [f"best baseline on {key}: {best['model']} ({best['value']:.4f})"
             for key, best in summary.get("best_baseline", {}).items()]
    for model, paired in summary.get("vs_best_baseline_paired", {}).items():
        lines.append(f"{model} - {paired['other']} (best baseline), full NDCG@10 per user: "
                     f"{_paired(paired['full.ndcg@10'])}")
    vs_zero = summary.get("fine_tuned_vs_zero_shot")
    if vs_zero:
        beats = vs_zero["every_fine_tuned_beats_zero_shot"]
        lines += _yes_no("every fine-tuned model beats zero-shot", beats)
        lines += [f"{model} - zero_shot_lm, full NDCG@10 per user: {_paired(entry['paired']['full.ndcg@10'])}"
                  for model, entry in vs_zero["per_model"].items()]
    lm_vs_id = summary.get("next_item_lm_vs_next_item_id")
    if lm_vs_id:
        lines += _yes_no("next_item_lm beats next_item_id", lm_vs_id["beats"])
        for key in ("full.hr@10", "full.ndcg@10"):
            paired = lm_vs_id["paired"][key]
            verdict = "significant" if paired["significant"] else "within noise"
            lines.append(f"next_item_lm - next_item_id, {key} per user: "
                         f"{_paired(paired, f'; {verdict} at |z| >= 2')}")
    return lines


def write_quality_outputs(out_dir: Path, metrics: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    """Write metrics.md, metrics.json, summary.json and report.html of a quality run into ``out_dir``.

    Args:
        out_dir: the benchmark's output folder.
        metrics: the evaluation's metrics with ``hr@K_se`` and the ``benchmark`` block.
        summary: ``quality_summary``'s comparisons with the ``benchmark`` block.
    """
    from hyperrec.evaluation.tables import metrics_table

    out_dir = Path(out_dir)
    bench = summary["benchmark"]
    extra = {
        "full NDCG@10 / best baseline": {
            m: fmt(r["full.ndcg@10"], 2, "x") for m, r in summary.get("ratio_to_best_baseline", {}).items()},
        **training_columns(summary["training"]),
    }
    caption = (f"{bench['dataset']}, {bench['split']} split, test users; ± per-user standard error; "
               f"{bench['date']} on {bench['machine']}; wall {bench['wall_seconds']:.0f} s; "
               f"{load_text(bench.get('load_average'))}")
    findings = _findings(summary)
    markdown = (f"# Quality benchmark\n\n{caption}\n\n{headline_table(metrics, extra)}\n\n"
                + "".join(f"- {line}\n" for line in findings)
                + f"\n## Every metric\n\n{metrics_table(metrics)}\n")
    (out_dir / TABLE_FILE).write_text(markdown, encoding="utf-8")
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    meta = {"dataset": bench["dataset"], "split": bench["split"], "date": bench["date"],
            "machine": bench["machine"], "wall time": f"{bench['wall_seconds']:.0f} s",
            "load": load_text(bench.get("load_average")),
            "models": ", ".join(metrics["models"])}
    page = html_page(
        "hyperrec quality benchmark", meta,
        [("Headline metrics", headline_table(metrics, extra, tablefmt="html")),
         ("Findings", html_list(findings)),
         ("Every metric", "<p>" + html.escape(metrics_table(metrics).split("\n", 1)[0]) + "</p>"
          + metrics_table(metrics, tablefmt="html").split("\n\n", 1)[1])],
        headline_plot(metrics, "Quality benchmark"),
    )
    (out_dir / REPORT_FILE).write_text(page, encoding="utf-8")


def dataset_source(cfg: HyperrecConfig) -> Path:
    """The data a run reads: the MovieLens folder, or the generic format's interactions file (whose run would
    otherwise be captioned with the unused default ``dataset_dir``)."""
    if cfg.data.format == "generic" and cfg.data.interactions_path is not None:
        return Path(cfg.data.interactions_path).expanduser().resolve()
    return Path(cfg.data.dataset_dir).expanduser().resolve()


def run_quality(
    cfg: HyperrecConfig,
    out_dir: Path,
    *,
    with_encoders: bool = False,
    prepared: Path | None = None,
    pipeline_run: str | None = None,
) -> dict[str, Any]:
    """Run the quality benchmark into ``out_dir`` (outputs in the module docstring).

    Args:
        cfg: the configuration; the run trains ``QUALITY_MODELS`` whatever its ``modeling.train`` says.
        out_dir: the folder for every output.
        with_encoders: also train ``ENCODER_MODELS`` (long on CPU).
        prepared: a prepared-data folder to use instead of running data prep.
        pipeline_run: the MLflow grouping tag (default: ``bench-quality-<time>``).

    Returns:
        The summary with its ``benchmark`` block, as written to summary.json.
    """
    clock = RunClock()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline_run = pipeline_run or new_run_id("quality")
    language = [*QUALITY_MODELS, *(ENCODER_MODELS if with_encoders else ())]
    bench_cfg = bench_config(cfg, out_dir, language)
    stages: dict[str, float] = {}
    prepared_dir = prepare(bench_cfg, pipeline_run, out_dir, prepared, stages)
    run = train_and_evaluate(bench_cfg, pipeline_run, prepared_dir, out_dir, stages)
    metrics = add_hit_rate_errors(run.metrics)
    summary = quality_summary(metrics, run.evaluation_dir, prepared_dir / "test.parquet", run.training)
    summary["benchmark"] = {
        "name": "quality",
        "dataset": str(prepared_dir if prepared is not None else dataset_source(cfg)),
        "split": PreparedData(prepared_dir).split_method or cfg.prep.split,
        "prepared_dir": str(prepared_dir),
        "language_models": language,
        "with_encoders": with_encoders,
        "pipeline_run": pipeline_run,
        "profile": cfg.modeling.runtime.profile,
        **clock.facts(cfg.threads, run.stage_seconds),
    }
    metrics["benchmark"] = summary["benchmark"]
    write_quality_outputs(out_dir, metrics, summary)
    logger.info("quality benchmark finished in %.0f s: %s", summary["benchmark"]["wall_seconds"],
                out_dir / REPORT_FILE)
    return summary
