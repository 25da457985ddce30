"""The tags of a registered version: lineage, bundle, gate and metrics (see
``hyperrec.registry.mlflow_registry``).

All strings; ``@`` becomes ``_at_`` because MLflow keys may not contain it:

- lineage: ``hyperrec.pipeline_run``, ``hyperrec.training_run_id``, ``hyperrec.data_report_sha256``,
  ``hyperrec.config_sha256``, ``hyperrec.eval.protocol_sha256`` (``unknown`` when not known);
- bundle: ``hyperrec.bundle.model_name``, ``.version``, ``.n_items``, ``.manifest_sha256``, ``.files`` (JSON
  ``{path: sha256}``, authoritative), ``.lineage`` (the manifest's lineage, JSON), and one
  ``hyperrec.sha256.<path>`` per file for the UI;
- gate: ``hyperrec.gate.passed``, ``.metric``, ``.challenger``, ``.challenger_value``, ``.best_baseline``,
  ``.best_baseline_value``, ``.champion_value``, ``.champion_version``, ``.margin``, ``.min_improvement``,
  ``.decision`` (the whole decision JSON);
- metrics: ``hyperrec.metric.<protocol>.<metric>`` for every number of the challenger's metrics.json entry
  (``hyperrec.metric.full.ndcg_at_10``); ``champion_metric`` reads these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperrec.registry.gate import GateDecision, canonical_metric
from hyperrec.registry.integrity import sha256_json
from hyperrec.tracking import PIPELINE_RUN_TAG

UNKNOWN = "unknown"
TRAINING_RUN_TAG = "hyperrec.training_run_id"
DATA_REPORT_TAG = "hyperrec.data_report_sha256"
CONFIG_TAG = "hyperrec.config_sha256"
PROTOCOL_TAG = "hyperrec.eval.protocol_sha256"
MODEL_NAME_TAG = "hyperrec.bundle.model_name"
BUNDLE_VERSION_TAG = "hyperrec.bundle.version"
N_ITEMS_TAG = "hyperrec.bundle.n_items"
MANIFEST_SHA_TAG = "hyperrec.bundle.manifest_sha256"
FILES_TAG = "hyperrec.bundle.files"
BUNDLE_LINEAGE_TAG = "hyperrec.bundle.lineage"
FILE_TAG_PREFIX = "hyperrec.sha256."
METRIC_TAG_PREFIX = "hyperrec.metric."
GATE_TAG_PREFIX = "hyperrec.gate."
PREVIOUS_CHAMPION_TAG = "hyperrec.previous_champion"
PROMOTED_AT_TAG = "hyperrec.promoted_at"
ROLLED_BACK_AT_TAG = "hyperrec.rolled_back_at"
ROLLED_BACK_TO_TAG = "hyperrec.rolled_back_to"

_TAG_KEY_RE = re.compile(r"^[/\w.\- :]{1,250}$")
#: The manifest lineage keys that fill the lineage tags when the caller does not give them.
_LINEAGE_KEYS = (TRAINING_RUN_TAG, DATA_REPORT_TAG, CONFIG_TAG)


@dataclass(frozen=True)
class VersionInfo:
    """What callers need of an MLflow ModelVersion (plain strings, JSON-ready)."""

    name: str
    version: str
    source: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_model_version(cls, mv: Any, aliases: Mapping[str, Any] | None = None) -> VersionInfo:
        version = str(mv.version)
        if aliases is not None:
            names = tuple(sorted(alias for alias, v in aliases.items() if str(v) == version))
        else:
            names = tuple(sorted(mv.aliases or ()))
        return cls(name=mv.name, version=version, source=mv.source, run_id=mv.run_id or None,
                   aliases=names, tags=dict(mv.tags or {}))

    def bundle_files(self, tag: str) -> tuple[dict[str, str], str] | None:
        """(the files tag as ``{path: sha256}``, the value of ``tag``) of a bundle hyperrec registered; None
        when either tag is missing or the files tag is not JSON."""
        try:
            return json.loads(self.tags[FILES_TAG]), self.tags[tag]
        except (KeyError, ValueError):
            return None

    def to_dict(self, *, with_tags: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version, "source": self.source,
                                "run_id": self.run_id, "aliases": list(self.aliases)}
        if with_tags:
            data["tags"] = dict(self.tags)
        return data


def metric_tag(metric: str) -> str:
    """Version tag holding ``metric`` (``full.ndcg@10`` -> ``hyperrec.metric.full.ndcg_at_10``)."""
    return METRIC_TAG_PREFIX + canonical_metric(metric).replace("@", "_at_")


def _numeric_leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    leaves: dict[str, float] = {}
    for key, value in tree.items():
        if key == "segments":  # per-segment numbers are many and never gate anything
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            leaves.update(_numeric_leaves(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            leaves[name] = float(value)
    return leaves


def gate_tags(decision: GateDecision) -> dict[str, str]:
    """The gate's decision as version tags: each figure, and the whole decision as JSON.

    Args:
        decision: the gate's decision.

    Returns:
        Tag key -> value; a missing number is "none".
    """
    def number(value: float | None) -> str:
        return "none" if value is None else repr(float(value))

    return {
        f"{GATE_TAG_PREFIX}passed": str(decision.passed).lower(),
        f"{GATE_TAG_PREFIX}metric": decision.metric,
        f"{GATE_TAG_PREFIX}challenger": decision.challenger,
        f"{GATE_TAG_PREFIX}challenger_value": number(decision.challenger_value),
        f"{GATE_TAG_PREFIX}best_baseline": decision.best_baseline,
        f"{GATE_TAG_PREFIX}best_baseline_value": number(decision.best_baseline_value),
        f"{GATE_TAG_PREFIX}champion_value": number(decision.champion_value),
        f"{GATE_TAG_PREFIX}champion_version": decision.champion_version or "none",
        f"{GATE_TAG_PREFIX}margin": number(decision.margin),
        f"{GATE_TAG_PREFIX}min_improvement": number(decision.min_improvement),
        f"{GATE_TAG_PREFIX}decision": decision.to_json(),
    }


def lineage_tags(manifest: Mapping[str, Any], lineage: Mapping[str, str] | None,
                 training_run_id: str | None, pipeline_run: str,
                 protocol: Mapping[str, Any] | None) -> dict[str, str]:
    """Lineage tags of a version: the caller's ``lineage`` first, then the manifest's, else ``unknown``.

    Args:
        manifest: the bundle manifest; its ``lineage`` fills keys the caller did not give.
        lineage: the caller's lineage tags (keys with or without the ``hyperrec.`` prefix), or None.
        training_run_id: the MLflow run that trained the model, or None.
        pipeline_run: the pipeline run id.
        protocol: the metrics.json protocol block, hashed into the protocol tag, or None.

    Returns:
        Tag key -> value, including the pipeline run and every lineage key.
    """
    given = {key if key.startswith("hyperrec.") else f"hyperrec.{key}": str(value)
             for key, value in (lineage or {}).items() if value is not None}
    from_manifest = manifest.get("lineage") if isinstance(manifest.get("lineage"), Mapping) else {}
    tags = {PIPELINE_RUN_TAG: pipeline_run}
    for key in _LINEAGE_KEYS:
        short = key.removeprefix("hyperrec.")
        value = given.get(key) or from_manifest.get(short) or from_manifest.get(key)
        tags[key] = str(value) if value else UNKNOWN
    if training_run_id:
        tags[TRAINING_RUN_TAG] = str(training_run_id)
    tags[PROTOCOL_TAG] = sha256_json(dict(protocol)) if protocol else given.get(PROTOCOL_TAG, UNKNOWN)
    for key, value in given.items():
        tags.setdefault(key, value)
    return tags


def bundle_tags(manifest: Mapping[str, Any], manifest_sha: str) -> dict[str, str]:
    """What the bundle is: model name, version, catalogue size and the manifest's sha256."""
    return {
        MODEL_NAME_TAG: str(manifest.get("model_name", UNKNOWN)),
        BUNDLE_VERSION_TAG: str(manifest.get("version", UNKNOWN)),
        N_ITEMS_TAG: str(manifest.get("n_items", UNKNOWN)),
        MANIFEST_SHA_TAG: manifest_sha,
    }


def version_tags(manifest: Mapping[str, Any], lineage: Mapping[str, str], bundle: Mapping[str, str],
                 decision: GateDecision, challenger_metrics: Mapping[str, Any] | None) -> dict[str, str]:
    """Every tag of a new version: lineage, bundle, the file list (authoritative), gate, metrics, per-file
    sha256.

    Args:
        manifest: the bundle manifest (``files``: name -> sha256, ``lineage``).
        lineage: the lineage tags, from ``lineage_tags``.
        bundle: the bundle tags (manifest hash and the like).
        decision: the gate's decision.
        challenger_metrics: the challenger's metrics.json entry; each number becomes a metric tag.

    Returns:
        Tag key -> value. Per-file tags are added only for names that are valid tag keys.
    """
    files: dict[str, str] = manifest["files"]
    metric_tags = {metric_tag(name): repr(value)
                   for name, value in _numeric_leaves(challenger_metrics or {}).items()}
    metric_tags[metric_tag(decision.metric)] = repr(float(decision.challenger_value))
    file_tags = {FILE_TAG_PREFIX + name: digest for name, digest in files.items()
                 if _TAG_KEY_RE.match(FILE_TAG_PREFIX + name)}
    return {
        **lineage,
        **bundle,
        FILES_TAG: json.dumps(files, sort_keys=True),
        BUNDLE_LINEAGE_TAG: json.dumps(manifest.get("lineage", {}), sort_keys=True, default=str),
        **gate_tags(decision),
        **metric_tags,
        **file_tags,
    }


def version_description(decision: GateDecision, pipeline_run: str) -> str:
    """One line for the registry UI: the challenger's gate metric against baseline and champion."""
    return (
        f"{decision.challenger}: {decision.metric} {decision.challenger_value:.6g} "
        f"(best baseline {decision.best_baseline} {decision.best_baseline_value:.6g}, champion "
        f"{'none' if decision.champion_value is None else format(decision.champion_value, '.6g')}); "
        f"pipeline run {pipeline_run}"
    )
