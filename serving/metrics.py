"""Prometheus metrics of the serving runtime, in the default registry that KServe's ``/metrics`` exposes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STAGE_SECONDS = Histogram(
    "hyperrec_stage_seconds",
    "Time spent per serving stage (preprocess, predictor, postprocess, feedback).",
    ["model", "stage"],
    buckets=_BUCKETS,
)
ERRORS = Counter(
    "hyperrec_errors_total",
    "Requests or predictor calls that failed, by kind (invalid_request, not_ready, predictor, internal).",
    ["model", "kind"],
)
DEGRADED = Counter(
    "hyperrec_degraded_total", "Answers served from the popularity fallback because of a failure.", ["model", "reason"]
)
FALLBACKS = Counter(
    "hyperrec_fallback_total", "Answers served from popularity by design (no known history).", ["model", "source"]
)
CANDIDATES_SCORED = Counter(
    "hyperrec_candidates_scored_total", "Items scored by the model for answers.", ["model"]
)
PREDICTOR_RETRIES = Counter(
    "hyperrec_predictor_retries_total", "Predictor attempts after the first one.", ["model"]
)
FEEDBACK_EVENTS = Counter("hyperrec_feedback_events_total", "Feedback events appended to the log.", ["type"])
