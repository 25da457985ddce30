"""The drift report page: a summary table of every check's verdict, then Evidently's widgets per group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from evidently.core.metric_types import render_widgets
from evidently.legacy.renderers.html_widgets import (
    CounterData,
    counter,
    group_widget,
    plotly_figure,
    table_data,
)

from hyperrec.monitoring.verdicts import CHECKS, CheckResult

if TYPE_CHECKING:
    from hyperrec.monitoring.results import DriftResult


def render_html(result: DriftResult) -> str:
    """The whole page: the summary group first, then one group per non-empty section."""
    widgets = [group_widget(title="Drift summary", widgets=_summary_widgets(result))]
    widgets += [group_widget(title=title, widgets=items) for title, items in result.sections if items]
    return render_widgets(widgets)


def embedding_widgets(check: CheckResult, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> list:
    """Counters of an embedding check and a scatter of both samples on their first two principal components.

    Args:
        check: the embedding check's result.
        ref: the reference embedding sample.
        cur: the current embedding sample.
        rng: draws at most 500 rows of each sample for the scatter.

    Returns:
        The counter widget and the scatter widget (empty for one-dimensional embeddings).
    """
    import plotly.graph_objects as go
    from sklearn.decomposition import PCA

    def head(matrix: np.ndarray, n: int = 500) -> np.ndarray:
        return matrix if len(matrix) <= n else matrix[rng.choice(len(matrix), n, replace=False)]

    ref_h, cur_h = head(ref), head(cur)
    figure = go.Figure()
    if ref.shape[1] >= 2:
        pca = PCA(n_components=2, random_state=0).fit(np.vstack([ref_h, cur_h]))
        for label, rows in (("reference", ref_h), ("current", cur_h)):
            points = pca.transform(rows)
            figure.add_trace(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", name=label,
                                          marker={"size": 4, "opacity": 0.5}))
        figure.update_layout(xaxis_title="PC 1", yaxis_title="PC 2")
    counters = counter(
        title=f"{check.name}: {CHECKS[check.name].description}",
        counters=[
            CounterData("status", check.status),
            CounterData("domain classifier ROC AUC", f"{check.score:.3f}"),
            CounterData("threshold", f"{check.threshold:.3f}"),
            CounterData("p-value", _fmt(check.p_value)),
            CounterData("rows (ref / cur)", f"{check.reference_rows} / {check.current_rows}"),
        ],
    )
    return [
        counters,
        plotly_figure(title=f"{check.name}: first two principal components (sample)", figure=figure),
    ]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}"


def _summary_widgets(result: DriftResult) -> list[Any]:
    ref, cur = result.windows["reference"], result.windows["current"]
    widgets = [
        counter(
            title="Verdict",
            counters=[
                CounterData("drift detected", "YES" if result.drift_detected else "no"),
                CounterData("drifted checks", ", ".join(result.drifted_checks) or "none"),
                CounterData(
                    "quality (CTR)",
                    f"{result.quality['status']}"
                    + (f" {result.quality['value']:.4f}" if result.quality["value"] is not None else ""),
                ),
            ],
        ),
        table_data(
            title="Windows",
            column_names=["window", "source", "first event", "last event", "rows", "users", "items"],
            data=[
                [w["name"], w["source"], w["first_event"], w["last_event"], w["rows"], w["users"], w["items"]]
                for w in (ref, cur)
            ],
        ),
        table_data(
            title=f"Checks: drift = score >= threshold AND p-value <= alpha / checks run = "
            f"{result.settings['alpha']} / {result.settings['checks_run']}. Evidently's widgets below "
            "compare only score and threshold.",
            column_names=[
                "check",
                "group",
                "method",
                "score",
                "threshold",
                "p-value",
                "status",
                "rows ref / cur",
                "users ref / cur",
                "detail",
            ],
            data=[
                [
                    c.name,
                    c.group,
                    c.method,
                    _fmt(c.score),
                    _fmt(c.threshold),
                    _fmt(c.p_value),
                    c.status,
                    f"{c.reference_rows} / {c.current_rows}",
                    f"{c.reference_users} / {c.current_users}",
                    c.detail,
                ]
                for c in result.checks.values()
            ],
        ),
    ]
    return widgets
