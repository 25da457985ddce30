"""Typed settings of the canary controller, mounted as ``HyperrecConfig.canary``.

This module must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from hyperrec.settings_base import Section as _Section


class GuardrailConfig(_Section):
    """Hard limits on the challenger in each step; any violation rolls it back at once."""

    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Failed requests / requests (predictor, "
        "internal and not-ready errors; a client's invalid request is not counted).",
    )
    max_degraded_ratio: float = Field(0.05, ge=0, le=1, description="Answers from the popularity fallback "
                                      "because of a failure / requests.")
    max_p99_seconds: float = Field(0.5, gt=0, description="p99 of the latency stage, absolute limit.")
    max_p99_ratio: float = Field(
        1.5, ge=1, description="p99 limit relative to the champion's in the same step."
    )
    min_requests: int = Field(50, ge=1, description="Fewer challenger requests in a step: not judged, hold.")


class PrometheusConfig(_Section):
    """Where the per-revision serving metrics are, and how a revision is told apart."""

    url: str = Field("http://prometheus-operated.monitoring.svc:9090", description="Prometheus base URL.")
    window: str = Field("5m", pattern=r"^\d+[smh]$", description="PromQL range of one step (rate/increase).")
    revision_label: str = Field(
        "revision",
        description="Label that names the revision on every serving series: a target label from the scrape "
        "config (relabelled from the pod) or a metric label set by the server.",
    )
    champion: str = Field("champion", description="revision_label value of the champion's series.")
    challenger: str = Field("challenger", description="revision_label value of the challenger's series.")
    latency_stage: str = Field("predictor", description="hyperrec_stage_seconds stage whose p99 is guarded.")
    timeout_seconds: float = Field(10.0, gt=0, description="HTTP timeout of one query.")


class CanaryConfig(_Section):
    """The canary controller (``hyperrec canary``): traffic steps, the CTR test, guardrails, logs."""

    registered_model: str = Field(
        "hyperrec-ranker", description="MLflow registered model whose aliases move."
    )
    traffic_steps: list[int] = Field(
        [10, 50, 100],
        description="Challenger's share at each stage; the last must be 100 (= promotion). The first is the "
        "share `hyperrec deploy` starts the canary with (deploy.canary_traffic_percent).",
    )
    min_steps_per_stage: int = Field(2, ge=1, description="Healthy steps before ramping to the next stage.")
    max_steps: int = Field(96, ge=1, description="Steps after which an inconclusive canary is rolled back.")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="False-promotion rate bound of the CTR test.")
    power: float = Field(0.8, gt=0, lt=1, description="Power for the minimum detectable effect (sizing).")
    baseline_ctr: float = Field(0.05, gt=0, lt=1, description="Champion's expected CTR (sizing).")
    mde_relative: float = Field(0.2, gt=0, description="Minimum detectable relative CTR lift (sizing, τ).")
    guardrails: GuardrailConfig = Field(default_factory=GuardrailConfig)
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    decision_log: Path = Field(
        Path("outputs/canary/decisions.jsonl"),
        description="JSONL of every decision with its evidence (also the resume state).",
    )
    challenger_suffix: str = Field(
        "-challenger",
        description="RawDeployment: the challenger's InferenceService is deploy.service_name + this suffix.",
    )
    embedded_url: str | None = Field(
        None,
        description="Base URL of an embedded `hyperrec serve` transformer (e.g. http://127.0.0.1:8080): the "
        "controller moves its split (PUT /hyperrec/split) instead of a Kubernetes object; None: the cluster.",
    )
    route_suffix: str = Field(
        "-route",
        description="RawDeployment: the InferenceGraph that splits traffic is deploy.service_name + this "
                    "suffix.",
    )

    @field_validator("traffic_steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        if (
            not steps
            or steps[-1] != 100
            or any(not 0 < s <= 100 for s in steps)
            or steps != sorted(set(steps))
        ):
            raise ValueError(
                f"traffic_steps must increase strictly within 1..100 and end at 100, got {steps}"
            )
        return steps
