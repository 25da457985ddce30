"""One typed configuration for every hyperrec step.

Loaded from YAML, then overridden by environment variables (``HYPERREC__SECTION__KEY=value``) and then by
CLI ``--set section.key=value`` flags, in that order: later sources win. Every path is a setting, and
relative paths resolve against the current working directory so that a config file means the same thing
on a laptop, in CI and inside a pipeline container.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from hyperrec.cluster_settings import ClusterConfig
from hyperrec.deploy.settings import DeployConfig
from hyperrec.errors import ConfigError
from hyperrec.evaluation.settings import EvaluationConfig
from hyperrec.experiments.settings import CanaryConfig
from hyperrec.fairness_settings import FairnessConfig
from hyperrec.modeling.settings import ModelingConfig
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.settings import ServingConfig
from hyperrec.settings_base import Section as _Section

ENV_PREFIX = "HYPERREC__"


class DataConfig(_Section):
    """Where the raw data lives and how to read it."""

    format: Literal["movielens", "generic"] = Field(
        "movielens", description="movielens: ratings.csv/movies.csv/tags.csv; generic: see docs/DATA.md"
    )
    dataset_dir: Path = Field(
        Path("../shared/datasets/ml-latest-small"),
        description="Folder with the MovieLens files; looked at first, before any download.",
    )
    interactions_path: Path | None = Field(None, description="generic format: interactions CSV/Parquet/JSONL")
    items_path: Path | None = Field(None, description="generic format: items CSV/Parquet/JSONL")
    download: bool = Field(
        True, description="Download and verify the public archive when dataset_dir is missing."
    )
    download_url: str = Field(
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        description="Official archive of ml-latest-small.",
    )
    file_sha256: dict[str, str] = Field(
        {
            "README.txt": "569448aba20b7eb111dbaa271231a51a9c25add372ededf84256dc592a1fceaf",
            "links.csv": "028a4a1d17751ca9276e0e0718cfc22356350f224a996e1ec348c23274b9209d",
            "movies.csv": "c47b783f23eb304413307e1bb05335e427737da20ec8d3c0e96335567dd5f3dc",
            "ratings.csv": "80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8",
            "tags.csv": "68eec00a0820c2faa8863a6df7032f13d5899a4462bce9a97213905297ff3d34",
        },
        description="SHA-256 of each unpacked file of the 2018-09-26 release; a mismatch aborts the "
                    "download.",
    )
    window_start_unix: int | None = Field(
        None, description="Keep only events at or after this Unix time (retraining on a new window)."
    )
    window_end_unix: int | None = Field(None, description="Keep only events before this Unix time.")
    cache_dir: Path = Field(
        Path("~/.cache/hyperrec/datasets"),
        description="Where downloads are unpacked (~ is expanded when used).",
    )


class PrivacyConfig(_Section):
    """Pseudonymization and PII scrubbing. The HMAC key itself is never part of the config."""

    pseudonym_key_env: str = Field("HYPERREC_PSEUDONYM_KEY", description="Env var holding the HMAC key.")
    pseudonym_key_file: Path = Field(
        Path("~/.config/hyperrec/pseudonym.key"),
        description="Secret file read when the env var is unset; created (mode 0600) on first use.",
    )
    scrub_pii: bool = Field(True, description="Remove emails, phones, URLs and card numbers from free text.")
    state_dir: Path | None = Field(
        None,
        description="Erasure ledger, consent list and audit log (docs/PRIVACY.md); None: "
                    "<output_dir>/../privacy.",
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description="Drop events older than this many days from the prepared data and the feedback log.",
    )
    retention_now_unix: int | None = Field(
        None, description="The time the retention window counts back from; None: the current time."
    )
    erasure_token_env: str = Field(
        "HYPERREC_ERASURE_TOKEN",
        description="Env var holding the bearer token of the transformer's /hyperrec/forget and "
                    "/hyperrec/consent "
        "endpoints; unset: the endpoints are off.",
    )
    audit: bool = Field(
        True, description="Append who ran what to <state_dir>/audit.jsonl and tag MLflow runs."
    )


class PrepConfig(_Section):
    """Cleaning, labelling, splitting, examples and segmentation."""

    min_rating: float | None = Field(
        None,
        description="A rating counts as positive at or above this; None: every rating is an interaction.",
    )
    min_dwell_seconds: float = Field(
        10.0, description="A view counts as positive at or above this dwell time."
    )
    bot_max_events: int = Field(
        500, gt=0,
        description="More events than this from one user inside the window... (ml-latest-small: one user "
        "has 392 ratings within 10 s, a sign-up import; 500 quarantines no MovieLens row)",
    )
    bot_window_seconds: int = Field(
        60, gt=0, description="...marks the burst as bot-like; it is quarantined."
    )
    detect_language: bool = Field(True, description="Detect the language of item text (langdetect).")
    split: Literal["leave_last_out", "global_temporal"] = "leave_last_out"
    temporal_validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="global_temporal: share of time"
    )
    temporal_test_fraction: float = Field(0.1, gt=0, lt=0.5, description="global_temporal: share of time")
    negatives_per_positive: int = Field(4, ge=1)
    negative_sampling: Literal["uniform", "popularity"] = "uniform"
    profile_max_tokens: int = Field(128, ge=8, description="Token budget of the user-profile text.")
    profile_max_items: int = Field(20, ge=1, description="Most recent positive items in the profile.")
    segments_k_min: int = Field(2, ge=2)
    segments_k_max: int = Field(8, ge=2)

    @model_validator(mode="after")
    def _k_range(self) -> PrepConfig:
        if self.segments_k_max < self.segments_k_min:
            raise ValueError("prep.segments_k_max must be >= prep.segments_k_min")
        return self


class BaselinesConfig(_Section):
    """Classical recommenders every learned model is measured against."""

    knn_neighbors: int = Field(50, ge=1)
    als_factors: int = Field(64, ge=1)
    als_regularization: float = Field(0.05, ge=0)
    als_iterations: int = Field(15, ge=1)
    als_alpha: float = Field(10.0, gt=0, description="Confidence scaling of implicit feedback.")
    bpr_factors: int = Field(64, ge=1)
    bpr_learning_rate: float = Field(
        0.1, gt=0, description="0.1 beat 0.01 on the validation item (NDCG@10 0.030 vs 0.024, 3 seeds)."
    )
    bpr_regularization: float = Field(0.01, ge=0)
    bpr_iterations: int = Field(100, ge=1)


class TrackingConfig(_Section):
    """MLflow."""

    tracking_uri: str | None = Field(None, description="None: sqlite database inside output_dir.")
    experiment: str = "hyperrec"


#: Settings with one source that other sections read too: ``{key a section reads: the key it follows}``. When
#: a config is built (YAML, env, --set, constructor), a section's key takes the source's value unless the same
#: config sets it as well (the documented section keys stay per-section overrides); assigning to a built
#: config changes only the key assigned. The defaults of both are equal, which tests/unit/test_config.py
#: checks.
FOLLOWED_KEYS = {
    "modeling.runtime.seed": "seed",
    "monitoring.drift.seed": "seed",
    "modeling.runtime.threads": "threads",
    "monitoring.feedback.min_rating": "prep.min_rating",
    "monitoring.feedback.min_dwell_seconds": "prep.min_dwell_seconds",
}


class HyperrecConfig(_Section):
    """The whole configuration."""

    seed: int = Field(42, description="Seed of every step: data prep, baselines, models, evaluation, drift.")
    output_dir: Path = Field(Path("outputs/latest"), description="Stable output folder of the last run.")
    threads: int = Field(
        2, ge=1, description="Threads for torch/BLAS/implicit (and the models' torch threads)."
    )
    data: DataConfig = DataConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    prep: PrepConfig = PrepConfig()
    baselines: BaselinesConfig = BaselinesConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tracking: TrackingConfig = TrackingConfig()
    cluster: ClusterConfig = ClusterConfig()
    modeling: ModelingConfig = Field(default_factory=ModelingConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)
    bandit: BanditConfig = Field(default_factory=BanditConfig)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)

    @model_validator(mode="before")
    @classmethod
    def _follow_sources(cls, tree: Any) -> Any:
        """Copy each ``FOLLOWED_KEYS`` source the tree sets into its followers that the tree leaves unset."""
        if not isinstance(tree, Mapping):
            return tree
        tree = _plain_copy(tree)
        for follower, source in FOLLOWED_KEYS.items():
            found, value = _dotted_value(tree, source)
            if found and not _dotted_value(tree, follower)[0] and _settable(tree, follower):
                _set_dotted(tree, follower, value)
        return tree

    def mlflow_uri(self) -> str:
        """The tracking URI, defaulting to a sqlite file beside the outputs."""
        if self.tracking.tracking_uri:
            return self.tracking.tracking_uri
        return f"sqlite:///{(self.output_dir.parent / 'mlflow.db').resolve()}"

    def to_yaml(self) -> str:
        """Human-readable form, as ``hyperrec config`` prints it."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def to_json(self) -> str:
        """One-line form for pipeline parameters (KFP's compiled header breaks on multi-line defaults).

        JSON is YAML, so ``config_from_yaml`` reads both forms.
        """
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {part!r} is not a section")
    node[parts[-1]] = value


def _plain_copy(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The tree with every nested mapping copied (a caller's dict is never changed; section objects are
    kept)."""
    return {key: _plain_copy(value) if isinstance(value, Mapping) else value for key, value in tree.items()}


def _dotted_value(tree: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    """(True, value) when the plain tree sets ``dotted``, else (False, None)."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _settable(tree: Mapping[str, Any], dotted: str) -> bool:
    """Whether every section on the way to ``dotted`` is a plain mapping or absent (a section given as an
    object was set as a whole, so it is left as it is)."""
    node: Any = tree
    for part in dotted.split(".")[:-1]:
        node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            return True
        if not isinstance(node, Mapping):
            return False
    return True


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, Any]]:
    return [
        (key[len(ENV_PREFIX):].lower().replace("__", "."), _yaml_value(value, f"environment variable {key}"))
        for key, value in sorted(environ.items())
        if key.startswith(ENV_PREFIX)
    ]


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    return key.strip(), _yaml_value(value, f"override {key.strip()!r}")


def _yaml_value(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not a valid YAML value: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, on one line (PyYAML's own message quotes the text over several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> HyperrecConfig:
    """Build the config from a YAML file, then env vars, then ``key=value`` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        tree = _read_yaml(Path(path))
    for key, value in _env_overrides(os.environ if environ is None else environ):
        _set_dotted(tree, key, value)
    for item in overrides or []:
        _set_dotted(tree, *_parse_override(item))
    return config_from_dict(tree, source=str(path) if path else "defaults")


def config_from_yaml(text: str) -> HyperrecConfig:
    """Rebuild a config from ``HyperrecConfig.to_yaml`` output (used by pipeline steps)."""
    return config_from_dict(yaml.safe_load(text) or {}, source="pipeline parameter")


def config_from_dict(tree: Mapping[str, Any], source: str) -> HyperrecConfig:
    try:
        return HyperrecConfig.model_validate(dict(tree))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config ({source}): {problems}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; expected a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; expected a YAML file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded
