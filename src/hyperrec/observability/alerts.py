"""The hyperrec alerts, as the PrometheusRule that the Prometheus Operator loads.

Serving alerts are per namespace and revision, so a failing canary names itself; their thresholds follow the
serving defaults (``serving.request_timeout_s`` 0.5 s bounds a predictor call). Drift alerts read the gauges
``hyperrec drift`` pushes to the Pushgateway. ``promtool check rules`` and ``promtool test rules`` check them
(tests/deploy/test_observability.py).
"""

from __future__ import annotations

from typing import Any

from hyperrec.observability import queries as q

BY = "namespace, revision"
#: The drift CronJob runs hourly in prod and every 6 hours in staging: stale after more than one missed run.
DRIFT_STALE_SECONDS = 7 * 3600


def _alert(name: str, expr: str, duration: str, severity: str, summary: str,
           description: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if duration != "0m":
        rule["for"] = duration
    rule["labels"] = {"severity": severity, "service": "hyperrec"}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def serving_rules() -> list[dict[str, Any]]:
    """The serving alerts: errors, predictor latency, degraded answers, retries, catalogue mismatch, feedback.

    Returns:
        One Prometheus alerting rule each.
    """
    where = "{{ $labels.namespace }}/{{ $labels.revision }}"
    return [
        _alert("HyperrecHighErrorRate", f"({q.error_ratio(BY)}) > 0.05", "10m", "critical",
               "hyperrec server errors above 5%",
               f"{where}: {{{{ $value | humanizePercentage }}}} of recommend requests fail (not counting "
               "invalid requests)."),
        _alert("HyperrecPredictorLatencyHigh", f"{q.stage_quantile(0.99, 'predictor', BY)} > 0.4", "10m",
               "warning", "hyperrec predictor p99 latency near the 0.5 s budget",
               f"{where}: p99 of the predictor stage is {{{{ $value | humanizeDuration }}}}; past "
               "serving.request_timeout_s answers degrade."),
        _alert("HyperrecDegradedAnswers", f"({q.degraded_ratio(BY)}) > 0.05", "10m", "warning",
               "hyperrec serves degraded (popularity) answers",
               f"{where}: {{{{ $value | humanizePercentage }}}} of answers fell back to popularity because "
               "the predictor or ranking failed."),
        _alert("HyperrecPredictorRetries", f"({q.retries_per_predictor_call(BY)}) > 0.1", "15m", "warning",
               "hyperrec retries predictor calls",
               f"{where}: {{{{ $value | humanize }}}} retries per predictor call: Triton is slow or "
               "restarting."),
        _alert("HyperrecPredictorMismatch", f"{q.predictor_mismatch()} == 1", "5m", "critical",
               "hyperrec predictor serves another catalogue",
               f"{where}: the predictor's model contradicts the transformer's catalogue; its scores are "
               "refused and every answer degrades (a canary across catalogues?)."),
        _alert("HyperrecFeedbackStalled",
               f"{q.answers_per_second('namespace', window='30m')} > 0 unless on (namespace) "
               f"{q.rate_by('hyperrec_feedback_events_total', 'namespace', '30m')} > 0", "30m", "warning",
               "hyperrec answers requests but receives no feedback",
               "{{ $labels.namespace }}: answers are served but no feedback event arrived for 30 minutes; "
               "drift checks and the online CTR go blind."),
    ]


def drift_rules() -> list[dict[str, Any]]:
    """The drift monitor's alerts: drift found, online quality below its floor, and no recent check.

    Returns:
        One Prometheus alerting rule each.
    """
    return [
        _alert("HyperrecDriftDetected", f"{q.DRIFT_DETECTED} == 1", "0m", "warning",
               "hyperrec drift monitor found drift",
               "The last `hyperrec drift` check found drift; with --trigger it has asked for retraining (see "
               "its decision log)."),
        _alert("HyperrecOnlineQualityBelowFloor", f"{q.QUALITY_BELOW_FLOOR} == 1", "0m", "warning",
               "hyperrec online quality below its floor",
               "The last drift check measured online quality under monitoring.quality's floor."),
        _alert("HyperrecDriftCheckStale",
               f"({q.DRIFT_CHECK_AGE}) > {DRIFT_STALE_SECONDS} or "
               'absent(hyperrec_drift_last_check_timestamp_seconds{job="hyperrec-drift"})', "1h", "warning",
               "hyperrec drift status is stale",
               "No drift result reached the Pushgateway for over 7 hours: the CronJob fails, or "
               "monitoring.pushgateway_url is unset."),
    ]


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups, as in a Prometheus rule file (``promtool check rules`` reads ``{"groups": ...}``)."""
    return [
        {"name": "hyperrec-serving", "rules": serving_rules()},
        {"name": "hyperrec-drift", "rules": drift_rules()},
    ]


def prometheus_rule(name: str = "hyperrec") -> dict[str, Any]:
    """The PrometheusRule custom resource (monitoring.coreos.com/v1) holding :func:`rule_groups`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name},
        "spec": {"groups": rule_groups()},
    }
