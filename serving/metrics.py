"""Prometheus metrics of the serving runtime, in the default registry that KServe's ``/metrics`` exposes.

``revision`` names the revision that answered (``serving.revision``, or the challenger's label in an embedded
split): the canary controller selects series by it. On a cluster the scrape adds its own ``revision`` target
label, which wins (Prometheus keeps the exporter's as ``exported_revision``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STAGE_SECONDS = Histogram(
    "hyperrec_stage_seconds",
    "Time spent per serving stage (preprocess, predictor, postprocess, feedback).",
    ["model", "stage", "revision"],
    buckets=_BUCKETS,
)
ERRORS = Counter(
    "hyperrec_errors_total",
    "Requests or predictor calls that failed, by kind (invalid_request, not_ready, predictor, internal).",
    ["model", "kind", "revision"],
)
DEGRADED = Counter(
    "hyperrec_degraded_total", "Answers served from the popularity fallback because of a failure.",
    ["model", "reason", "revision"],
)
FALLBACKS = Counter(
    "hyperrec_fallback_total", "Answers served from popularity by design (no known history).",
    ["model", "source", "revision"],
)
CANDIDATES_SCORED = Counter(
    "hyperrec_candidates_scored_total", "Items scored by the model for answers.", ["model", "revision"]
)
PREDICTOR_RETRIES = Counter(
    "hyperrec_predictor_retries_total", "Predictor attempts after the first one.", ["model"]
)
FEEDBACK_EVENTS = Counter("hyperrec_feedback_events_total", "Feedback events appended to the log.", ["type"])
BANDIT_PLAIN = Counter(
    "hyperrec_bandit_plain_total",
    "Answers whose bandit fell back to the plain ranking (state unavailable or stale); never an error.",
    ["model", "reason", "revision"],
)
SCORE_PATH = Counter(
    "hyperrec_predictor_path_total",
    "Predictor calls by output: top_k (in-graph top k decided the answer), full (all scores), "
    "top_k_then_full (the prefix could not decide; full scores fetched after it).",
    ["model", "revision", "path"],
)

#: The stages every recommend request times, and the predictor paths it may take.
STAGES = ("preprocess", "predictor", "postprocess")
SCORE_PATHS = ("top_k", "full", "top_k_then_full")


@dataclass(frozen=True)
class RevisionSeries:
    """The labelled series of one model revision that every request moves, looked up once.

    ``labels(...)`` validates and sorts its keywords and takes a lock: several microseconds a call, five calls
    a request (issue 11). Creating them at load also exports them at 0 before the first request, so that
    PromQL's increase() over a window counts a revision's first requests too.
    """

    stage: dict[str, Any]
    score_path: dict[str, Any]
    candidates: Any

    @classmethod
    def of(cls, model: str, revision: str) -> RevisionSeries:
        for kind in ("predictor", "internal", "not_ready"):
            ERRORS.labels(model=model, kind=kind, revision=revision)
        return cls(
            stage={
                stage: STAGE_SECONDS.labels(model=model, stage=stage, revision=revision) for stage in STAGES
            },
            score_path={
                path: SCORE_PATH.labels(model=model, revision=revision, path=path) for path in SCORE_PATHS
            },
            candidates=CANDIDATES_SCORED.labels(model=model, revision=revision),
        )
