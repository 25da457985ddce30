"""Typed settings of drift monitoring and the retraining trigger, the ``HyperrecConfig.monitoring`` section.

Every threshold is an *effect size* (how large a change is), never a p-value: a check flags drift only when
its effect size reaches the threshold **and** a user-level permutation test says the change is larger than the
sampling noise of the two windows (``drift.alpha``). docs/MONITORING.md explains each number.

This module must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from hyperrec.settings_base import Section as _Section

# The URIs a KFP v2 launcher downloads input artifacts from (kubeflow/pipelines backend, objectstore
# ParseBucketConfigForArtifactURI): an importer in a cluster run gets nothing else, a pod-local path included.
KFP_IMPORTABLE_URI = re.compile(r"^(gs|s3|minio)://[^/?]+(/[^?]*)?(\?.+)?$")


URI_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def is_kfp_importable(uri: str) -> bool:
    """Whether a pipeline pod's KFP launcher can download an input artifact from ``uri``."""
    return bool(KFP_IMPORTABLE_URI.match(uri))


def source_path_or_uri(text: str) -> Path | str:
    """A source as given: an object-store URI (``scheme://...``) stays a string, anything else is a local path
    (``Path`` would fold the ``//`` of a URI)."""
    return text if URI_SCHEME.match(text) else Path(text)


class DriftThresholds(_Section):
    """Effect-size threshold per check: drift needs a score at or above it (and a significant permutation
    test)."""

    event_mix: float = Field(
        0.1, gt=0, le=1,
        description="Jensen-Shannon distance (natural log, 0..0.83) between the event-type mixes "
        "(impressions excluded). 0.1 is about a 12-14 point move of share between two event types.",
    )
    item_popularity: float = Field(
        0.2,
        gt=0,
        description="Wasserstein distance, in reference standard deviations, of log(1 + reference count of "
        "the event's item): are users consuming what was popular in the training data? 0.2 = Cohen's 'small' "
        "effect.",
    )
    rating: float = Field(
        0.2, gt=0, description="Normed Wasserstein distance of the values of rating events (stars)."
    )
    dwell_seconds: float = Field(
        0.2, gt=0, description="Normed Wasserstein distance of log(1 + dwell seconds) of view/dwell events."
    )
    user_activity: float = Field(
        0.2,
        gt=0,
        description="Normed Wasserstein distance of log(1 + events per active day), one row per user.",
    )
    item_embeddings: float = Field(
        0.55,
        gt=0.5,
        lt=1,
        description="ROC AUC of Evidently's domain classifier telling the embeddings of the distinct items "
        "consumed in the current window from the reference ones (0.5: indistinguishable; 0.55 ~ a 0.18-sd "
        "shift).",
    )
    profile_embeddings: float = Field(
        0.55,
        gt=0.5,
        lt=1,
        description="ROC AUC of the domain classifier on user profile embeddings (given, or the mean "
        "embedding of each user's consumed items), one row per user.",
    )
    prediction_score: float = Field(
        0.2, gt=0, description="Normed Wasserstein distance of the model scores of served recommendations."
    )
    recommended_items: float = Field(
        0.1, gt=0, le=1,
        description="Jensen-Shannon distance between the distributions of recommended items (the most "
        "recommended items of both windows, the rest pooled as 'other').",
    )
    ctr: float = Field(
        0.2, gt=0,
        description="Relative change of click-through rate, |CTR_cur - CTR_ref| / CTR_ref (0.2: 5% -> 4%).",
    )


CHECK_NAMES = tuple(DriftThresholds.model_fields)


class DriftSettings(_Section):
    """How the two windows are compared."""

    thresholds: DriftThresholds = Field(
        default_factory=DriftThresholds, description="Effect-size threshold of each check."
    )
    alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Family-wise false-alarm rate of one monitor run: a check over its threshold is drift "
        "only when its p-value (user-level permutation test; exact AUC null for user-level embeddings) is at "
        "most alpha / (number of checks that ran) (Bonferroni). Otherwise it is reported as sampling noise.",
    )
    permutation_early_stop: int = Field(
        10, ge=1,
        description="Stop permuting once this many permuted scores reach the observed one (Besag-Clifford "
        "sequential p-value): noise is dismissed after a few dozen permutations, real drift runs the full "
        "ceil(checks / alpha) - 1 needed to reach the Bonferroni level.",
    )
    auc_null_permutations: int = Field(
        99,
        ge=19,
        description="item_embeddings: user permutations whose classifier AUCs give the mean and spread of a "
        "normal null (a classifier fit per permutation is too slow for the hundreds an empirical p-value "
        "needs).",
    )
    min_users: int = Field(
        20, ge=2, description="Fewer users than this in either window: the check reports insufficient_data."
    )
    min_rows: int = Field(
        50,
        ge=2,
        description="Fewer non-null rows than this in either window: the check reports insufficient_data.",
    )
    embedding_max_rows: int = Field(
        2000, ge=50, description="Rows sampled per window for the embedding domain classifiers (speed)."
    )
    embedding_pca_components: int | None = Field(
        20, ge=2,
        description="Project embeddings on this many principal components of the pooled sample before the "
        "classifier (speed, and less classifier overfitting on wide vectors); None: raw vectors.",
    )
    top_recommended_items: int = Field(
        20, ge=1,
        description="recommended_items compares the shares of this many most-recommended items; the rest is "
        "'other'. Small on purpose: Jensen-Shannon on thousands of sparse categories measures sample size.",
    )
    disabled_checks: list[str] = Field(
        default_factory=list, description="Check names to skip (reported as disabled), e.g. ['rating']."
    )
    seed: int = Field(
        42, description="Seed of the permutations, the embedding samples and the classifiers (default: seed)."
    )

    @model_validator(mode="after")
    def _known_checks(self) -> DriftSettings:
        unknown = sorted(set(self.disabled_checks) - set(CHECK_NAMES))
        if unknown:
            raise ValueError(f"unknown checks in disabled_checks: {unknown}; known: {list(CHECK_NAMES)}")
        return self


class WindowSettings(_Section):
    """Default time windows when the command line names none (Unix-second bounds are half-open [start,
    end))."""

    reference_days: float | None = Field(
        None,
        gt=0,
        description="Keep only the last N days of the reference source; None: all of it (the champion's "
                    "data).",
    )
    current_days: float | None = Field(
        None, gt=0,
        description="Keep only the last N days of the current source, ending at its newest event (for a live "
        "feedback log: now); None: all of it. Set it for --watch on a growing log.",
    )


class SourceSettings(_Section):
    """Default sources when the command line names none (the CronJob passes only --current)."""

    reference: Path | str | None = Field(
        None,
        description="The champion's training interactions: a prepared-data folder (its interactions table) "
        "or an interaction file/folder, as a local path or an s3:// / gs:// URI (downloaded once per "
        "command; the drift CronJob uses the URI that monitoring.trigger.kfp.reference_uri names). "
        "--prepared / --reference win.",
    )
    reference_table: Literal["interactions", "train"] = Field(
        "interactions", description="Table of a prepared-data reference folder to compare with."
    )
    items: Path | None = Field(
        None,
        description="items.parquet (item_id -> item_idx); default: the reference folder's items.parquet.",
    )
    item_embeddings: Path | None = Field(
        None,
        description=".npy catalogue embeddings (row = item_idx) for the embedding checks; None: skipped.",
    )

    @field_validator("reference", mode="before")
    @classmethod
    def _path_or_uri(cls, value: object) -> object:
        return source_path_or_uri(value) if isinstance(value, str) else value


class FeedbackSettings(_Section):
    """How serving feedback-log records become interaction rows.

    Labelled by the rule of data prep (``hyperrec.data.labels.is_positive``), with data prep's thresholds: in
    a ``HyperrecConfig`` both follow ``prep.min_dwell_seconds`` and ``prep.min_rating`` unless set here.
    """

    min_dwell_seconds: float = Field(
        10.0,
        ge=0,
        description="A dwell at or above this is labelled positive (default: prep.min_dwell_seconds).",
    )
    min_rating: float | None = Field(
        None, description="A rating at or above this is labelled positive; None: every rating is positive "
        "(default: prep.min_rating)."
    )


class QualitySettings(_Section):
    """Online quality measured from feedback, compared with a floor by the trigger."""

    metric: Literal["ctr"] = Field("ctr", description="ctr: clicks on impressed items / impressions.")
    floor: float | None = Field(
        0.01, ge=0, le=1, description="Retrain when the current window's CTR falls below this; None: never."
    )
    min_impressions: int = Field(
        500,
        ge=1,
        description="Fewer impressions than this: quality is insufficient_data, never 'below floor'.",
    )


class KfpSettings(_Section):
    """Where the retraining pipeline runs on a cluster."""

    host: str | None = Field(
        None,
        description="KFP API endpoint (e.g. http://ml-pipeline.kubeflow:8888); None: use the local runner.",
    )
    namespace: str | None = Field(
        None, description="Kubeflow profile namespace; None for single-user installs."
    )
    experiment: str = Field(
        "hyperrec-retraining", description="KFP experiment the retraining runs belong to."
    )
    pipeline_id: str | None = Field(
        None,
        description="ID of the uploaded retraining pipeline (kfp.Client needs pipeline_version_id with it).",
    )
    pipeline_version_id: str | None = Field(
        None, description="ID of the uploaded pipeline version to run; wins over pipeline_package."
    )
    pipeline_package: Path | None = Field(
        None, description="Compiled retraining pipeline YAML, used when no pipeline version is set."
    )
    run_name_prefix: str = Field("hyperrec-retrain", description="Run names are '<prefix>-<UTC time>'.")
    service_account: str | None = Field(None, description="Kubernetes service account of the run's pods.")
    reference_uri: str | None = Field(
        None,
        description="Object-store URI (gs://, s3://, minio://) of the reference data (the champion's "
        "prepared data or interactions) that the retraining pipeline's importer reads; sent as its "
        "reference_uri. Required for KFP runs: the pipeline's pods cannot read a path of the pod that starts "
        "the run.",
    )
    current_uri: str | None = Field(
        None,
        description="Object-store URI (gs://, s3://, minio://) of the current events (the feedback log as "
        "mirrored to the object store) that the retraining pipeline's importer reads; sent as its "
        "current_uri. Required for KFP runs, for the same reason.",
    )
    active_states: list[str] = Field(
        ["PENDING", "RUNNING", "CANCELING", "PAUSED", "RUNTIME_STATE_UNSPECIFIED"],
        description="KFP run states that count as 'still running' for the debounce.",
    )

    @field_validator("reference_uri", "current_uri")
    @classmethod
    def _importable(cls, uri: str | None) -> str | None:
        if uri is not None and not is_kfp_importable(uri):
            raise ValueError(f"{uri!r} is not a URI the KFP launcher can download (gs://, s3:// or minio://)")
        return uri


class TriggerSettings(_Section):
    """When a drift or quality alarm starts the retraining pipeline."""

    cooldown_seconds: float = Field(
        86400.0, ge=0, description="No new trigger within this many seconds of the last triggered run."
    )
    debounce: bool = Field(
        True,
        description="Skip while the last triggered run is still in an active state (checked through KFP).",
    )
    max_attempts: int = Field(
        3, ge=1, description="Attempts per KFP API call (create run / get run state) before giving up."
    )
    backoff_seconds: float = Field(5.0, ge=0, description="Wait before the second attempt.")
    backoff_multiplier: float = Field(2.0, ge=1, description="Each further wait is this many times longer.")
    max_backoff_seconds: float = Field(60.0, ge=0, description="Upper bound of one wait.")
    decision_log: Path | None = Field(
        None,
        description="Local JSONL decision log, one line per decision (triggered or not); None: "
        "decisions.jsonl in the report folder. It is also the cool-down/debounce memory; where it does not "
        "survive (a CronJob pod's /tmp) the trigger falls back to the decision runs in MLflow.",
    )
    mlflow_experiment: str = Field(
        "hyperrec-monitoring",
        description="MLflow experiment with one run per decision, tagged with the outcome.",
    )
    kfp: KfpSettings = Field(
        default_factory=KfpSettings, description="KFP API server and retraining pipeline."
    )


class MonitoringConfig(_Section):
    """Drift monitoring and the retraining trigger (``HyperrecConfig.monitoring``)."""

    output_dir: Path = Field(
        Path("outputs/monitoring"),
        description="Where `hyperrec drift` writes drift_report.html, drift_summary.json and evidently.json.",
    )
    watch_interval_seconds: float = Field(
        900.0,
        gt=0,
        description="`hyperrec drift --watch`: seconds between checks unless --interval is given.",
    )
    sources: SourceSettings = Field(
        default_factory=SourceSettings, description="Default reference and extras."
    )
    windows: WindowSettings = Field(default_factory=WindowSettings, description="Default time windows.")
    drift: DriftSettings = Field(
        default_factory=DriftSettings, description="Checks, thresholds and significance."
    )
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings, description="Feedback-log adapter.")
    quality: QualitySettings = Field(default_factory=QualitySettings, description="Online quality floor.")
    trigger: TriggerSettings = Field(default_factory=TriggerSettings, description="Retraining trigger.")
    pushgateway_url: str | None = Field(
        None,
        description="Prometheus Pushgateway (host:port or URL) that `hyperrec drift` pushes its result "
        "gauges to after each check (hyperrec.monitoring.metrics; job hyperrec-drift): the drift CronJob "
        "lives too briefly to be scraped. None pushes nothing.",
    )

