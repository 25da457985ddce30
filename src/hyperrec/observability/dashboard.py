"""The hyperrec Grafana dashboard, built with grafana-foundation-sdk (Grafana's own typed builders).

Rows: traffic (answers/s, error and degraded ratios), latency (p50/p95/p99 of each serving stage), the
predictor (retries per call, catalogue mismatch), feedback (CTR, events/s) and drift (status, drifted checks,
age of the last check, online quality). Serving panels are split by Knative revision, so a canary shows
beside the stable revision; variables pick the Prometheus data source, the namespace and the revisions.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from hyperrec.observability import queries as q

UID = "hyperrec-serving"
TITLE = "hyperrec: serving, feedback and drift"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
#: Matcher of every serving query: the dashboard's namespace and revision variables.
SEL = 'namespace="$namespace",revision=~"$revision"'
BY_REVISION = "revision"
YES_NO = [model.ValueMap(options={
    "0": model.ValueMappingResult(text="no", color="green", index=0),
    "1": model.ValueMappingResult(text="yes", color="red", index=1),
})]


def _query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def _timeseries(title: str, description: str, unit: str, *targets: prometheus.Dataquery) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
    for target in targets:
        panel = panel.with_target(target)
    return panel.height(8).span(12)


def _stat(title: str, description: str, expr: str, unit: str = "none") -> stat.Panel:
    return (
        stat.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE)
        .with_target(_query(expr, title)).height(5).span(6)
    )


def _traffic_row() -> list:
    return [
        db.Row("Traffic"),
        _timeseries(
            "Answers per second",
            "Recommend requests answered, per revision (postprocess stage count).",
            "reqps",
            _query(q.answers_per_second(BY_REVISION, SEL), "{{revision}}"),
        ),
        _timeseries(
            "Server error ratio",
            "Errors other than invalid requests per recommend request.",
            "percentunit",
            _query(q.error_ratio(BY_REVISION, SEL), "{{revision}}"),
        ),
        _timeseries(
            "Degraded answer ratio",
            "Answers served from popularity because the predictor or ranking failed.",
            "percentunit",
            _query(q.degraded_ratio(BY_REVISION, SEL), "{{revision}}"),
        ),
    ]


def _latency_row() -> list:
    row: list = [db.Row("Latency")]
    for stage in q.STAGES:
        targets = [
            _query(
                q.stage_quantile(quantile, stage, BY_REVISION, SEL),
                f"p{round(quantile * 100)} {{{{revision}}}}",
                ref=chr(ord("A") + index),
            )
            for index, quantile in enumerate(q.QUANTILES)
        ]
        row.append(_timeseries(f"{stage} latency", f"p50/p95/p99 of the {stage} stage per revision.", "s",
                               *targets))
    return row


def _predictor_row() -> list:
    return [
        db.Row("Predictor"),
        _timeseries(
            "Predictor retries per call",
            "Extra attempts per predictor call (Triton slow or down).",
            "none",
            _query(q.retries_per_predictor_call(BY_REVISION, SEL), "{{revision}}"),
        ),
        _timeseries(
            "Predictor catalogue mismatch",
            "1 while the predictor's model contradicts the transformer's catalogue: its scores are refused.",
            "none",
            _query(q.predictor_mismatch(SEL), "{{revision}}"),
        ),
    ]


def _feedback_row() -> list:
    events = q.rate_by('hyperrec_feedback_events_total{namespace="$namespace"}', "type", "5m")
    return [
        db.Row("Feedback"),
        _timeseries(
            "Click-through rate",
            "Clicks per impression reported to the feedback endpoint (1 h rate).",
            "percentunit",
            _query(q.feedback_ctr(BY_REVISION, SEL), "{{revision}}"),
        ),
        _timeseries(
            "Feedback events per second",
            "Feedback events appended to the log, by type.",
            "ops",
            _query(events, "{{type}}"),
        ),
    ]


def _drift_row() -> list:
    return [
        db.Row("Drift"),
        _stat("Drift detected", "Result of the last `hyperrec drift` check (pushed to the Pushgateway).",
              q.DRIFT_DETECTED).mappings(YES_NO),
        _stat("Online quality below floor", "Online quality of the last drift check under its floor.",
              q.QUALITY_BELOW_FLOOR).mappings(YES_NO),
        _stat("Age of the last drift check", "Time since the drift monitor last pushed a result.",
              q.DRIFT_CHECK_AGE, unit="s"),
        _timeseries("Drifted checks", "1 while a check of the last run reports drift.", "none",
                    _query(q.DRIFTED_CHECKS, "{{check}}")).span(6).height(5),
    ]


def _variables() -> list:
    source = db.DatasourceVariable("datasource").label("Data source").type("prometheus")
    namespace = (
        db.QueryVariable("namespace").label("Namespace").datasource(DATASOURCE)
        .query("label_values(hyperrec_stage_seconds_count, namespace)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    revision = (
        db.QueryVariable("revision").label("Revision").datasource(DATASOURCE)
        .query('label_values(hyperrec_stage_seconds_count{namespace="$namespace"}, revision)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True).all_value(".*")
    )
    return [source, namespace, revision]


def build_dashboard() -> model.Dashboard:
    """The dashboard model (grafana_foundation_sdk.models.dashboard.Dashboard).

    Returns:
        The dashboard: its variables, then the traffic, latency, predictor, feedback and drift rows.
    """
    builder = (
        db.Dashboard(TITLE).uid(UID).tags(["hyperrec", "kserve"]).editable().refresh("30s")
        .time("now-6h", "now").tooltip(model.DashboardCursorSync.CROSSHAIR)
        .description("Generated by hyperrec.observability.dashboard; edit the code, not this JSON.")
    )
    for variable in _variables():
        builder = builder.with_variable(variable)
    for item in [*_traffic_row(), *_latency_row(), *_predictor_row(), *_feedback_row(), *_drift_row()]:
        builder = builder.with_row(item) if isinstance(item, db.Row) else builder.with_panel(item)
    return builder.build()


def dashboard_json() -> str:
    """The dashboard as Grafana's JSON model, with sorted keys so that the committed copy diffs cleanly."""
    return json.dumps(build_dashboard(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def panel_expressions(dashboard: dict) -> list[str]:
    """Every PromQL expression of a dashboard JSON model (panels and query variables)."""
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            exprs.append(
                variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
            )
    return exprs
