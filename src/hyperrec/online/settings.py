"""Typed settings of the online serving runtime, the ``HyperrecConfig.serving`` section.

This module must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from hyperrec.online.guard_settings import HttpGuardConfig, SupervisorConfig
from hyperrec.online.predictor_settings import PredictorSettings
from hyperrec.settings_base import Section

__all__ = ["HttpGuardConfig", "ServingConfig", "SplitConfig", "SupervisorConfig"]


class SplitConfig(Section):
    """The embedded canary of ``hyperrec serve``: a challenger revision beside the champion in one
    transformer.

    Each request goes to the challenger with chance ``challenger_percent`` / 100, drawn per request as
    KServe's ``canaryTrafficPercent`` does (``sticky``: per user instead, by a hash of the pseudonym). On a
    cluster KServe splits between revisions and this stays off (``challenger_bundle_dir`` None).
    """

    challenger_bundle_dir: Path | None = Field(
        None, description="Bundle of the challenger revision; None: one revision, no split."
    )
    challenger_predictor_url: str | None = Field(
        None, description="host:port of the challenger's V2 predictor (hyperrec serve sets it)."
    )
    challenger_percent: int = Field(0, ge=0, le=100, description="Share of requests sent to the challenger.")
    challenger_registered_version: str | None = Field(
        None,
        description="Registry version of the challenger's bundle (hyperrec serve --challenger-registered).",
    )
    challenger_revision: str = Field(
        "challenger",
        min_length=1,
        description="revision label of the challenger's answers, metrics and feedback.",
    )
    sticky: bool = Field(False, description="Split per user (hash of the pseudonym) instead of per request.")
    control: bool = Field(
        True, description="Serve GET/PUT /hyperrec/split so a local canary controller can move the share."
    )


class ServingConfig(Section):
    """How the KServe transformer and the embedded V2 predictor serve a bundle."""

    revision: str = Field(
        "champion", min_length=1,
        description="revision label of this transformer's answers, metrics and feedback records (the canary "
        "controller's canary.prometheus.champion / .challenger values).",
    )
    registered_version: str | None = Field(
        None,
        description="Registry version of the served bundle, logged with feedback (hyperrec serve "
        "--registered sets it); None: unknown (records carry only the bundle manifest's version).",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)

    bundle_dir: Path | None = Field(
        None,
        description="Serving bundle folder (manifest.json, items.parquet, triton/); None: pass --bundle.",
    )
    host: str = Field("127.0.0.1", description="Address `hyperrec serve` binds the local servers to.")
    predictor_http_port: int = Field(
        8085, ge=0, le=65535, description="Embedded predictor REST port; 0: a free one."
    )
    predictor_grpc_port: int = Field(
        8086, ge=0, le=65535, description="Embedded predictor gRPC port; 0: a free one."
    )
    transformer_http_port: int = Field(
        8080, ge=0, le=65535, description="Transformer REST port; 0: a free one."
    )

    predictor_protocol: Literal["grpc", "http"] = Field(
        "grpc", description="V2 transport from the transformer to the predictor (Triton or the embedded one)."
    )
    predictor_url: str = Field(
        "127.0.0.1:8086", description="host:port of the predictor for predictor_protocol (no scheme)."
    )
    predictor_model_version: str = Field(
        "",
        description="Model version asked of the predictor; empty: the server's latest (KServe needs empty).",
    )
    request_timeout_s: float = Field(
        0.5,
        gt=0,
        description="Budget of one predictor call including retries; past it the answer is degraded.",
    )
    attempt_timeout_s: float = Field(0.25, gt=0, description="Deadline of one predictor attempt.")
    predictor: PredictorSettings = Field(
        default_factory=PredictorSettings,
        description="In-graph top k, onnxruntime session and dynamic batching.",
    )
    retries: int = Field(2, ge=0, le=10, description="Extra attempts after a failed predictor call.")
    backoff_initial_s: float = Field(
        0.02, ge=0, description="Wait before the first retry; doubles each retry."
    )
    backoff_max_s: float = Field(0.2, ge=0, description="Longest wait between two retries.")

    default_k: int = Field(10, ge=1, description="Recommendations returned when a request has no k.")
    max_k: int = Field(100, ge=1, description="Largest k a request may ask for; more is a 400.")
    max_history: int = Field(500, ge=1, description="Most history events a request may send; more is a 400.")
    max_candidates: int = Field(10_000, ge=1, description="Most candidate item ids a request may send.")
    max_user_id_chars: int = Field(256, ge=1, description="Longest user_id accepted.")

    exclude_seen: bool = Field(True, description="Never recommend an item that is in the request's history.")
    max_per_category: int | None = Field(
        3,
        ge=1,
        description="Diversity cap: most items sharing any one category in an answer (soft when items run "
        "out); None: no cap.",
    )
    popularity_weight: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Blend: (1-w)*minmax(model score) + w*minmax(log popularity) over eligible items; 0: "
                    "model only.",
    )
    explain_by_default: bool = Field(False, description="Attach explanations when a request does not say.")
    explain_top_n: int = Field(3, ge=1, description="History items listed per explained recommendation.")

    feedback_dir: Path = Field(
        Path("outputs/feedback"), description="Folder of the append-only feedback log."
    )
    feedback_rotate_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Start a new feedback segment file past this size."
    )
    feedback_max_events: int = Field(1000, ge=1, description="Most events one feedback call may append.")
    log_served: bool = Field(
        True,
        description="Append an impression record per shown item to the feedback log (off the request path).",
    )
    served_write_interval_s: float = Field(
        0.05, gt=0.0, le=10.0,
        description="Most seconds a served answer's impressions wait before the log writer appends them: one "
        "write + fsync covers the answers of the interval (feedback events are written at once).",
    )
    served_cache_size: int = Field(
        50_000,
        ge=1,
        description="Recent answers kept in memory to stamp feedback with their revision and to reward the "
                    "bandit.",
    )

    http: HttpGuardConfig = Field(default_factory=HttpGuardConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)

    load_in_background: bool = Field(
        True, description="Servers answer 503 while the bundle loads instead of delaying start-up."
    )

    bench_concurrency: list[int] = Field(
        [1, 8, 32, 64], description="Concurrency levels of `hyperrec bench serve`."
    )
    bench_requests: int = Field(200, ge=1, description="Requests per concurrency level against the servers.")
    bench_naive_requests: int = Field(
        16, ge=1, description="Requests per concurrency level through the naive per-candidate baseline."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServingConfig:
        if self.default_k > self.max_k:
            raise ValueError("serving.default_k must be <= serving.max_k")
        if self.attempt_timeout_s > self.request_timeout_s:
            raise ValueError("serving.attempt_timeout_s must be <= serving.request_timeout_s")
        if self.split.challenger_bundle_dir is not None and self.split.challenger_revision == self.revision:
            raise ValueError("serving.split.challenger_revision must differ from serving.revision")
        if not self.bench_concurrency or min(self.bench_concurrency) < 1:
            raise ValueError("serving.bench_concurrency must hold positive integers")
        return self

