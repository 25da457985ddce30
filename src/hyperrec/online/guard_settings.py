"""Settings that make serving hard to break from outside (``serving.http``) and that keep ``hyperrec serve``'s
children alive (``serving.supervisor``). Mounted by ``ServingConfig``; documented in docs/SERVING.md.

Secrets never live in the config: a token setting names the environment variable that holds it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from hyperrec.settings_base import Section


class HttpGuardConfig(Section):
    """What the REST servers (transformer and embedded predictor) accept, and from whom."""

    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body; longer ones are refused (413) while being read.",
    )
    max_item_id_chars: int = Field(
        256, ge=1, description="Longest item id a request or feedback event may send."
    )
    max_context_chars: int = Field(512, ge=1, description="Longest context.device / context.query string.")
    max_error_chars: int = Field(
        300,
        ge=40,
        description="Longest error message answered and logged for a 4xx (messages never echo values).",
    )
    repository_api: bool = Field(
        False,
        description="Serve the V2 model repository endpoints (POST "
                    "/v2/repository/models/<name>/load|unload). "
        "Off: 403. On: each call needs 'Authorization: Bearer <token>' of repository_token_env.",
    )
    repository_token_env: str = Field(
        "HYPERREC_REPOSITORY_TOKEN",
        min_length=1,
        description="Environment variable holding the repository API's bearer token (required when it is "
                    "on).",
    )
    feedback_token_env: str = Field(
        "HYPERREC_FEEDBACK_TOKEN", min_length=1,
        description="Environment variable holding the feedback endpoint's bearer token; unset or empty: open "
        "(for a mesh that authenticates callers itself).",
    )
    ready_requires_predictor: bool = Field(
        True,
        description="The transformer's readiness also asks its predictor: false while the predictor is down "
        "(the transformer still answers, degraded). Off: ready as soon as the bundle is loaded.",
    )
    predictor_probe_timeout_s: float = Field(
        0.5, gt=0, description="Deadline of the readiness probe of the predictor."
    )
    feedback_max_value: float = Field(
        1e6, gt=0, description="Largest absolute value of a feedback event (dwell seconds, rating)."
    )
    feedback_max_age_days: float = Field(
        3650.0, gt=0, description="Oldest feedback timestamp accepted, in days before now (ten years)."
    )
    feedback_max_ahead_s: float = Field(
        300.0, ge=0, description="How far a feedback timestamp may lie in the future (client clock skew)."
    )


class SupervisorConfig(Section):
    """How ``hyperrec serve`` keeps its predictor and transformer processes running."""

    log_dir: Path = Field(
        Path("outputs/serve-logs"),
        description="Folder of the children's logs (kept after hyperrec serve exits).",
    )
    max_restarts: int = Field(
        5,
        ge=0,
        description="Restarts of one child in a row (without a stable run between) before serve exits 2.",
    )
    backoff_initial_s: float = Field(
        0.5, ge=0, description="Wait before the first restart; doubles each time."
    )
    backoff_max_s: float = Field(10.0, ge=0, description="Longest wait before a restart.")
    stable_after_s: float = Field(
        60.0, gt=0, description="A child that ran this long since its restart has its restart count reset."
    )
    stop_timeout_s: float = Field(
        10.0, gt=0, description="How long a child may take to stop after SIGTERM before it is killed."
    )
