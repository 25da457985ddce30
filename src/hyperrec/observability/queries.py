"""The PromQL behind the dashboard and the alerts, in one place so that both read the same signals.

Labels: the serving metrics carry ``model`` (the transformer's name) and ``stage``/``kind``/``reason``; the
PodMonitor of manifests/components/monitoring adds ``namespace``, ``pod`` and ``revision`` (the Knative
revision, or the ReplicaSet's pod-template-hash in RawDeployment mode). Every query takes a label matcher
(``sel``) so the dashboard can narrow it to its variables and the alerts can leave it open.

Signals and what carries them:

- answers: every answered recommend request is timed once in the ``postprocess`` stage;
- requests: every recommend request, valid or not, is timed in the ``preprocess`` stage;
- server errors: ``hyperrec_errors_total`` except ``invalid_request`` (the caller's fault);
- degraded answers: ``hyperrec_degraded_total`` (popularity served because of a failure);
- predictor retries: ``hyperrec_predictor_retries_total`` per ``predictor`` stage call;
- feedback CTR: clicks over impressions of ``hyperrec_feedback_events_total``;
- drift: the gauges ``hyperrec drift`` pushes to the Pushgateway (job ``hyperrec-drift``).
"""

from __future__ import annotations

STAGES = ("preprocess", "predictor", "postprocess", "feedback")
QUANTILES = (0.5, 0.95, 0.99)


def _matcher(label: str, value: str, op: str = "=") -> str:
    return f'{label}{op}"{value}"'


def series(metric: str, *matchers: str) -> str:
    """``metric{m1,m2}``, or the bare name when no matcher is given."""
    joined = ",".join(m for m in matchers if m)
    return f"{metric}{{{joined}}}" if joined else metric


def stage_count(stage: str, sel: str = "") -> str:
    return series("hyperrec_stage_seconds_count", sel, _matcher("stage", stage))


def rate_by(metric: str, by: str, window: str) -> str:
    return f"sum by ({by}) (rate({metric}[{window}]))"


def answers_per_second(by: str, sel: str = "", window: str = "5m") -> str:
    return rate_by(stage_count("postprocess", sel), by, window)


def stage_quantile(quantile: float, stage: str, by: str, sel: str = "", window: str = "5m") -> str:
    buckets = series("hyperrec_stage_seconds_bucket", sel, _matcher("stage", stage))
    return f"histogram_quantile({quantile}, {rate_by(buckets, f'le, {by}', window)})"


def error_ratio(by: str, sel: str = "", window: str = "5m") -> str:
    errors = series("hyperrec_errors_total", sel, _matcher("kind", "invalid_request", "!="))
    return f"{rate_by(errors, by, window)} / {rate_by(stage_count('preprocess', sel), by, window)}"


def degraded_ratio(by: str, sel: str = "", window: str = "5m") -> str:
    degraded = rate_by(series("hyperrec_degraded_total", sel), by, window)
    return f"{degraded} / {answers_per_second(by, sel, window)}"


def retries_per_predictor_call(by: str, sel: str = "", window: str = "5m") -> str:
    retries = rate_by(series("hyperrec_predictor_retries_total", sel), by, window)
    return f"{retries} / {rate_by(stage_count('predictor', sel), by, window)}"


def feedback_events(event: str, by: str, sel: str = "", window: str = "1h") -> str:
    events = series("hyperrec_feedback_events_total", sel, _matcher("type", event))
    return rate_by(events, by, window)


def feedback_ctr(by: str, sel: str = "", window: str = "1h") -> str:
    return f"{feedback_events('click', by, sel, window)} / {feedback_events('impression', by, sel, window)}"


def predictor_mismatch(sel: str = "") -> str:
    return f"max by (namespace, revision) ({series('hyperrec_predictor_mismatch', sel)})"


DRIFT_DETECTED = 'max(hyperrec_drift_detected{job="hyperrec-drift"})'
DRIFTED_CHECKS = 'max by (check) (hyperrec_drift_check_drifted{job="hyperrec-drift"})'
DRIFT_CHECK_AGE = 'time() - max(hyperrec_drift_last_check_timestamp_seconds{job="hyperrec-drift"})'
QUALITY_BELOW_FLOOR = 'max(hyperrec_drift_quality_below_floor{job="hyperrec-drift"})'
