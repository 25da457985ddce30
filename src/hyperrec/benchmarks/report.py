"""The markdown and HTML of the offline benchmarks' reports: headline table, bar plot, self-contained page.

Shared by the quality and cold-start benchmarks, which write the same files into their output folder:
``METRICS_FILE`` (JSON), ``TABLE_FILE`` (markdown) and ``REPORT_FILE`` (one HTML page, its plot embedded).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hyperrec.benchmarks.summary import HEADLINE, baseline_names

METRICS_FILE = "metrics.json"
TABLE_FILE = "metrics.md"
REPORT_FILE = "report.html"


def load_text(load: Mapping[str, Any] | None) -> str:
    if not load or not load.get("start") or not load.get("end"):
        return "load average unknown"
    return f"1-min load average {load['start'][0]:.2f} at start, {load['end'][0]:.2f} at end"


def _cell(block: Mapping[str, Any], key: str, digits: int = 4) -> str:
    if key not in block:
        return "–"
    se = block.get(f"{key}_se")
    return f"{block[key]:.{digits}f}" + (f" ±{se:.{digits}f}" if se is not None else "")


def headline_table(metrics: Mapping[str, Any], extra: Mapping[str, Mapping[str, str]] | None = None,
                   tablefmt: str = "github") -> str:
    """One row per model: full and sampled HR@10 / NDCG@10 (± per-user standard error), then ``extra``
    columns (column name -> model -> cell).

    Args:
        metrics: a metrics.json dict (``hyperrec.evaluation.harness`` schema), with ``_se`` entries if any.
        extra: further columns, column name -> model -> cell text; a missing cell shows "–".
        tablefmt: the ``tabulate`` format, e.g. "github" or "html".

    Returns:
        The rendered table.
    """
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
    """PNG bytes: HR@10 and NDCG@10 per model with ±1 standard error, full and sampled protocol side by side.

    Args:
        metrics: a metrics.json dict with ``full`` and ``sampled`` blocks per model.
        title: the figure title.

    Returns:
        The plot as PNG bytes.
    """
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
            ax.bar(
                x + offset,
                [b[metric] for b in blocks],
                width,
                yerr=[b.get(f"{metric}_se", 0) for b in blocks],
                capsize=3,
                color=color,
                label=metric.upper(),
            )
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
    then the plot.

    Args:
        title: the page title and heading.
        meta: label -> value, shown as a definition list.
        sections: (heading, HTML fragment) pairs, in page order; headings are escaped, fragments are not.
        png: the plot, embedded as a data URI.

    Returns:
        The HTML page.
    """
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


def fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    """``value`` for a table cell: floats to ``digits`` decimals, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def training_columns(training: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        "fit s": {m: fmt(t.get("fit_seconds"), 1) for m, t in training.items()},
        "train s": {m: fmt(t.get("train_seconds"), 1) for m, t in training.items()},
        "examples/s": {m: fmt(t.get("examples_per_second"), 0) for m, t in training.items()},
    }
