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

MLflow runs of the steps land in ``out_dir/mlflow.db`` unless ``tracking.tracking_uri`` is set.
The helpers below are shared with ``hyperrec.benchmarks.cold_start``.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperrec.config import HyperrecConfig

logger = logging.getLogger(__name__)

#: Language models of the default run, in training order.
QUALITY_MODELS = ("next_item_lm", "next_item_id", "zero_shot_lm")
#: Added by ``with_encoders=True`` (tens of minutes on 2 CPU cores).
ENCODER_MODELS = ("bi_encoder", "cross_encoder")
ZERO_SHOT = "zero_shot_lm"
LM, ID_ONLY = "next_item_lm", "next_item_id"
#: (protocol, metric) pairs the benchmarks report.
HEADLINE = (("full", "hr@10"), ("full", "ndcg@10"), ("sampled", "hr@10"), ("sampled", "ndcg@10"))
#: The steps' own log lines that carry each model's fit time (see ``hyperrec.steps``).
_FIT_MESSAGES = ("fitted %s in %.1f s", "trained %s in %.1f s")

METRICS_FILE = "metrics.json"
TABLE_FILE = "metrics.md"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


# ----------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class BenchRun:
    """What ``train_and_evaluate`` left behind."""

    prepared_dir: Path
    models_dirs: list[Path]
    evaluation_dir: Path
    metrics: dict[str, Any]
    stage_seconds: dict[str, float]
    training: dict[str, dict[str, Any]]


def new_run_id(kind: str) -> str:
    return f"bench-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def bench_config(cfg: HyperrecConfig, out_dir: Path, language_models: Sequence[str]) -> HyperrecConfig:
    """``cfg`` training exactly ``language_models``; MLflow beside the outputs unless a tracking URI is set."""
    updates: dict[str, Any] = {"modeling": cfg.modeling.model_copy(update={"train": list(language_models)})}
    if cfg.tracking.tracking_uri is None:
        # tracking.step_run puts the sqlite database and the artifacts beside output_dir.
        updates["output_dir"] = Path(out_dir) / "run"
    return cfg.model_copy(update=updates)


def prepare(cfg: HyperrecConfig, pipeline_run: str, out_dir: Path, prepared: Path | None,
            stage_seconds: dict[str, float]) -> Path:
    """The prepared-data folder: ``prepared`` as given, or a fresh data prep into ``out_dir/data``."""
    from hyperrec.data.prepared import PreparedData
    from hyperrec.steps import data_prep_step

    if prepared is not None:
        PreparedData(Path(prepared)).split("test")  # a clear DataError when the folder is incomplete
        return Path(prepared)
    target = Path(out_dir) / "data"
    with _timed(stage_seconds, "data_prep"):
        data_prep_step(cfg, pipeline_run, target)
    return target


def train_and_evaluate(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, out_dir: Path,
                       stage_seconds: dict[str, float]) -> BenchRun:
    """Baselines and ``cfg.modeling.train`` into ``out_dir/models``, then ``evaluate_step`` of all of them."""
    from hyperrec.steps import evaluate_step, fine_tune_step, train_baselines_step

    out_dir = Path(out_dir)
    models_dirs = [out_dir / "models" / "baselines", out_dir / "models" / "language"]
    evaluation_dir = out_dir / "evaluation"
    for stale in (out_dir / "models", evaluation_dir):  # evaluate_step loads every folder it finds
        shutil.rmtree(stale, ignore_errors=True)
    with _captured_fit_seconds() as fit_seconds:
        with _timed(stage_seconds, "train_baselines"):
            train_baselines_step(cfg, pipeline_run, prepared_dir, models_dirs[0])
        with _timed(stage_seconds, "fine_tune"):
            fine_tune_step(cfg, pipeline_run, prepared_dir, models_dirs[1])
    with _timed(stage_seconds, "evaluate"):
        metrics = evaluate_step(cfg, pipeline_run, prepared_dir, models_dirs, evaluation_dir)
    return BenchRun(prepared_dir=Path(prepared_dir), models_dirs=models_dirs, evaluation_dir=evaluation_dir,
                    metrics=metrics, stage_seconds=stage_seconds,
                    training=training_info(models_dirs, fit_seconds))


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - started, 1)


class _FitSeconds(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg in _FIT_MESSAGES and isinstance(record.args, tuple) and len(record.args) == 2:
            self.seconds[str(record.args[0])] = round(float(record.args[1]), 1)


@contextmanager
def _captured_fit_seconds() -> Iterator[dict[str, float]]:
    """Model name -> seconds, read from the steps' "fitted/trained <name> in <s> s" log lines."""
    handler = _FitSeconds()
    steps_logger = logging.getLogger("hyperrec.steps")
    level = steps_logger.level
    steps_logger.addHandler(handler)
    if not steps_logger.isEnabledFor(logging.INFO):
        steps_logger.setLevel(logging.INFO)
    try:
        yield handler.seconds
    finally:
        steps_logger.removeHandler(handler)
        steps_logger.setLevel(level)


def training_info(models_dirs: Sequence[Path], fit_seconds: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per saved model: the step's fit seconds and, for trained language models, their saved train result."""
    info: dict[str, dict[str, Any]] = {}
    for models_dir in models_dirs:
        if not Path(models_dir).is_dir():
            continue
        for path in sorted(Path(models_dir).iterdir()):
            if not path.is_dir():
                continue
            config: dict[str, Any] = {}
            if (path / "model.json").exists():
                config = json.loads((path / "model.json").read_text(encoding="utf-8"))
            result = config.get("train_result") or {}
            values = {
                "fit_seconds": fit_seconds.get(path.name),
                "train_seconds": _rounded(result.get("train_seconds")),
                "validation_seconds": _rounded(result.get("validation_seconds")),
                "examples": result.get("examples"),
                "examples_per_second": _rounded(result.get("examples_per_second")),
                "epochs_run": result.get("epochs_run"),
                "best_epoch": result.get("best_epoch"),
                "best_validation": result.get("best_metric"),
                "stopped_early": result.get("stopped_early"),
            }
            info[path.name] = {key: value for key, value in values.items() if value is not None}
    return info


def _rounded(value: Any, digits: int = 1) -> Any:
    return round(float(value), digits) if isinstance(value, (int, float)) else value


# ----------------------------------------------------------------------------------------------- analysis


def baseline_names() -> set[str]:
    from hyperrec.models.registry import BASELINES

    return {cls.name for cls in BASELINES}


def add_hit_rate_errors(metrics: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``metrics`` with ``hr@K_se`` beside every ``hr@K``: HR is 0/1 per user, so its per-user
    standard error is ``sqrt(p(1-p)/(n-1))`` exactly (sample std with ddof=1 over sqrt(n))."""
    result = copy.deepcopy(metrics)
    for entry in result["models"].values():
        n = int(entry.get("n_users", 0))
        for protocol in ("full", "sampled"):
            block = entry.get(protocol) or {}
            for key in [k for k in block if k.startswith("hr@") and not k.endswith("_se")]:
                p = float(block[key])
                block[f"{key}_se"] = math.sqrt(max(p * (1 - p), 0.0) / (n - 1)) if n > 1 else 0.0
    return result


def per_user_full(evaluation_dir: Path, split_path: Path, model: str, k: int = 10) -> dict[str, tuple[float, float]]:
    """user_id -> (HR@k, NDCG@k) of the full protocol, from the model's recommendations.jsonl (exact for
    k <= top_n, as ``hyperrec.evaluation.recompute`` shows)."""
    from hyperrec.evaluation.recompute import read_recommendations, read_targets

    lists = read_recommendations(Path(evaluation_dir) / model / "recommendations.jsonl")
    targets = read_targets(Path(split_path))
    values: dict[str, tuple[float, float]] = {}
    for user, relevant in targets.items():
        top = lists.get(user, [])[:k]
        hits = [position for position, item in enumerate(top, start=1) if item in relevant]
        ideal = sum(1 / math.log2(position + 1) for position in range(1, min(len(relevant), k) + 1))
        values[user] = (1.0 if hits else 0.0, sum(1 / math.log2(p + 1) for p in hits) / ideal)
    return values


def paired_difference(evaluation_dir: Path, split_path: Path, model: str, other: str,
                      k: int = 10) -> dict[str, Any]:
    """``model`` minus ``other`` per user on full HR@k and NDCG@k: mean, paired standard error, z, wins."""
    a = per_user_full(evaluation_dir, split_path, model, k)
    b = per_user_full(evaluation_dir, split_path, other, k)
    users = sorted(set(a) & set(b))
    result: dict[str, Any] = {"model": model, "other": other, "n_users": len(users)}
    for column, metric in enumerate((f"hr@{k}", f"ndcg@{k}")):
        diff = np.array([a[u][column] - b[u][column] for u in users], dtype=np.float64)
        mean = float(diff.mean()) if len(diff) else 0.0
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        z = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
        result[f"full.{metric}"] = {
            "difference": mean, "se": se, "z": z, "significant": abs(z) >= 2.0,
            "users_better": int((diff > 0).sum()), "users_worse": int((diff < 0).sum()),
        }
    return result


def _value(metrics: Mapping[str, Any], model: str, key: str) -> float:
    protocol, metric = key.split(".", 1)
    return float(metrics["models"][model][protocol][metric])


def quality_summary(metrics: Mapping[str, Any], evaluation_dir: Path, split_path: Path,
                    training: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The comparisons of the quality benchmark (see the module docstring)."""
    models = list(metrics["models"])
    baselines = [m for m in models if m in baseline_names()]
    language = [m for m in models if m not in baselines]
    keys = [f"{p}.{m}" for p, m in HEADLINE]
    summary: dict[str, Any] = {
        "headline": {
            model: {key: _value(metrics, model, key) for key in keys}
            | {f"{key}_se": float(metrics["models"][model][key.split(".")[0]].get(f"{key.split('.')[1]}_se", 0))
               for key in keys}
            for model in models
        },
    }
    if baselines:
        best = {key: max(baselines, key=lambda m, key=key: _value(metrics, m, key)) for key in keys}
        summary["best_baseline"] = {key: {"model": best[key], "value": _value(metrics, best[key], key)}
                                    for key in keys}
        summary["ratio_to_best_baseline"] = {
            model: {key: (_value(metrics, model, key) / _value(metrics, best[key], key)
                          if _value(metrics, best[key], key) > 0 else None) for key in keys}
            for model in language
        }
        summary["vs_best_baseline_paired"] = {
            model: paired_difference(evaluation_dir, split_path, model, best["full.ndcg@10"]) for model in language
        }
    fine_tuned = [m for m in language if m != ZERO_SHOT]
    if ZERO_SHOT in models and fine_tuned:
        per_model = {
            model: {key: _value(metrics, model, key) > _value(metrics, ZERO_SHOT, key) for key in keys}
            | {"paired": paired_difference(evaluation_dir, split_path, model, ZERO_SHOT)}
            for model in fine_tuned
        }
        summary["fine_tuned_vs_zero_shot"] = {
            "every_fine_tuned_beats_zero_shot": {key: all(per_model[m][key] for m in fine_tuned) for key in keys},
            "per_model": per_model,
        }
    if LM in models and ID_ONLY in models:
        summary["next_item_lm_vs_next_item_id"] = {
            "beats": {key: _value(metrics, LM, key) > _value(metrics, ID_ONLY, key) for key in keys},
            "paired": paired_difference(evaluation_dir, split_path, LM, ID_ONLY),
        }
    summary["training"] = {name: dict(values) for name, values in training.items()}
    return summary


# ----------------------------------------------------------------------------------------------- reporting


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (other work on the machine changes the wall time, not the metrics)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def load_text(load: Mapping[str, Any] | None) -> str:
    if not load or not load.get("start") or not load.get("end"):
        return "load average unknown"
    return f"1-min load average {load['start'][0]:.2f} at start, {load['end'][0]:.2f} at end"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"


def _cell(block: Mapping[str, Any], key: str, digits: int = 4) -> str:
    if key not in block:
        return "–"
    se = block.get(f"{key}_se")
    return f"{block[key]:.{digits}f}" + (f" ±{se:.{digits}f}" if se is not None else "")


def headline_table(metrics: Mapping[str, Any], extra: Mapping[str, Mapping[str, str]] | None = None,
                   tablefmt: str = "github") -> str:
    """One row per model: full and sampled HR@10 / NDCG@10 (± per-user standard error), then ``extra``
    columns (column name -> model -> cell)."""
    from tabulate import tabulate

    extra = extra or {}
    baselines = baseline_names()
    headers = ["model", "kind", *(f"{p} {m.upper()}" for p, m in HEADLINE), *extra, "users"]
    rows = [
        [name, "baseline" if name in baselines else "language model",
         *(_cell(entry.get(p, {}), m) for p, m in HEADLINE),
         *(column.get(name, "–") for column in extra.values()), entry.get("n_users", "–")]
        for name, entry in metrics["models"].items()
    ]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def headline_plot(metrics: Mapping[str, Any], title: str) -> bytes:
    """PNG bytes: HR@10 and NDCG@10 per model with ±1 standard error, full and sampled protocol side by side."""
    from matplotlib.figure import Figure

    models = list(metrics["models"])
    baselines = baseline_names()
    figure = Figure(figsize=(11, 4.2), dpi=100)
    axes = figure.subplots(1, 2)
    x = np.arange(len(models))
    width = 0.38
    for ax, protocol in zip(axes, ("full", "sampled"), strict=True):
        for offset, metric, color in ((-width / 2, "hr@10", "#4c72b0"), (width / 2, "ndcg@10", "#dd8452")):
            blocks = [metrics["models"][m][protocol] for m in models]
            ax.bar(x + offset, [b[metric] for b in blocks], width, yerr=[b.get(f"{metric}_se", 0) for b in blocks],
                   capsize=3, color=color, label=metric.upper())
        ax.set_xticks(x, [f"{m}{'' if m in baselines else ' *'}" for m in models], rotation=30, ha="right")
        ax.set_title(f"{protocol} ranking" + (" (100 sampled negatives)" if protocol == "sampled" else ""))
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    figure.suptitle(f"{title} (* language model; bars: ±1 per-user standard error)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def html_page(title: str, meta: Mapping[str, str], sections: Sequence[tuple[str, str]], png: bytes) -> str:
    """A self-contained page: ``meta`` as a definition list, then each (heading, HTML fragment) section,
    then the plot."""
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in meta.items())
    body = "".join(f"<h2>{html.escape(heading)}</h2>\n{fragment}\n" for heading, fragment in sections)
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }}
dt {{ font-weight: 600; }} dd {{ margin: 0; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<dl>{rows}</dl>
{body}
<h2>Plot</h2>
<img alt="HR@10 and NDCG@10 per model" src="data:image/png;base64,{image}">
</body></html>
"""


def html_list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def training_columns(training: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        "fit s": {m: _fmt(t.get("fit_seconds"), 1) for m, t in training.items()},
        "train s": {m: _fmt(t.get("train_seconds"), 1) for m, t in training.items()},
        "examples/s": {m: _fmt(t.get("examples_per_second"), 0) for m, t in training.items()},
    }


def _findings(summary: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, best in summary.get("best_baseline", {}).items():
        lines.append(f"best baseline on {key}: {best['model']} ({best['value']:.4f})")
    for model, paired in summary.get("vs_best_baseline_paired", {}).items():
        entry = paired["full.ndcg@10"]
        lines.append(f"{model} - {paired['other']} (best baseline), full NDCG@10 per user: "
                     f"{entry['difference']:+.4f} ±{entry['se']:.4f} (z {entry['z']:.1f})")
    vs_zero = summary.get("fine_tuned_vs_zero_shot")
    if vs_zero:
        for key, value in vs_zero["every_fine_tuned_beats_zero_shot"].items():
            lines.append(f"every fine-tuned model beats zero-shot on {key}: {'yes' if value else 'no'}")
        for model, entry in vs_zero["per_model"].items():
            paired = entry["paired"]["full.ndcg@10"]
            lines.append(f"{model} - zero_shot_lm, full NDCG@10 per user: {paired['difference']:+.4f} "
                         f"±{paired['se']:.4f} (z {paired['z']:.1f})")
    lm_vs_id = summary.get("next_item_lm_vs_next_item_id")
    if lm_vs_id:
        for key, value in lm_vs_id["beats"].items():
            lines.append(f"next_item_lm beats next_item_id on {key}: {'yes' if value else 'no'}")
        for key in ("full.hr@10", "full.ndcg@10"):
            paired = lm_vs_id["paired"][key]
            lines.append(f"next_item_lm - next_item_id, {key} per user: {paired['difference']:+.4f} "
                         f"±{paired['se']:.4f} (z {paired['z']:.1f}; "
                         f"{'significant' if paired['significant'] else 'within noise'} at |z| >= 2)")
    return lines


def write_quality_outputs(out_dir: Path, metrics: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    from hyperrec.evaluation.tables import metrics_table

    out_dir = Path(out_dir)
    bench = summary["benchmark"]
    extra = {
        "full NDCG@10 / best baseline": {
            m: _fmt(r["full.ndcg@10"], 2, "x") for m, r in summary.get("ratio_to_best_baseline", {}).items()},
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


def run_quality(cfg: HyperrecConfig, out_dir: Path, *, with_encoders: bool = False, prepared: Path | None = None,
                pipeline_run: str | None = None) -> dict[str, Any]:
    """Run the quality benchmark into ``out_dir``; returns the summary (also written to summary.json)."""
    started = time.perf_counter()
    load_at_start = load_average()
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
        "dataset": str(Path(cfg.data.dataset_dir).resolve() if prepared is None else prepared_dir),
        "split": cfg.prep.split,
        "prepared_dir": str(prepared_dir),
        "language_models": language,
        "with_encoders": with_encoders,
        "pipeline_run": pipeline_run,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_description(),
        "threads": cfg.threads,
        "profile": cfg.modeling.runtime.profile,
        "stage_seconds": run.stage_seconds,
        "load_average": {"start": load_at_start, "end": load_average()},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    metrics["benchmark"] = summary["benchmark"]
    write_quality_outputs(out_dir, metrics, summary)
    logger.info("quality benchmark finished in %.0f s: %s", summary["benchmark"]["wall_seconds"],
                out_dir / REPORT_FILE)
    return summary
