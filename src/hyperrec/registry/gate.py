"""The registration gate: may a challenger model enter the model registry?

Pure functions over a ``metrics.json`` dict (``hyperrec.evaluation.harness`` schema); no MLflow here.

A challenger passes only if, on the configured metric (``EvaluationConfig.gate_metric``, default
``full.ndcg@10``), it beats **every** baseline and the current champion (when there is one) by **more than**
``min_improvement`` (an absolute difference in metric units: 0.0 means "strictly greater"). Every metric the
harness writes is higher-is-better; metrics that are not (``*_se``, ``scoring_seconds``, ``n_users``) are
refused. A missing model or metric, a non-finite value or an empty baseline list is a ``GateError``, never a
pass and never a silent fail: it means the pipeline is wired wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyperrec.errors import HyperrecError, read_json

DEFAULT_METRIC = "full.ndcg@10"
#: Leaves of a metrics.json model entry that are not "higher is better" and so cannot gate anything.
_NOT_A_SCORE = {"n_users", "scoring_seconds"}
#: Ranking metrics the harness writes per protocol; without a protocol prefix they mean the full protocol,
#: as in ``hyperrec.evaluation.harness.parse_metric``.
_PROTOCOL_METRICS = {"hr", "ndcg", "map", "recall", "mrr"}


class GateError(HyperrecError):
    """The gate cannot be evaluated: a model or metric is missing, or the inputs make no sense."""


def read_models_json(path: Path, *, missing: str, schema: str) -> dict[str, Any]:
    """A gate input with a ``models`` mapping (metrics.json, fairness.json). GateError: ``missing`` when the
    file is not there, or it is unreadable, or it has no ``models`` mapping (``schema``: whose schema is
    expected)."""
    document = read_json(path, GateError, missing=missing)
    if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
        raise GateError(f"{path} has no 'models' section ({schema} schema expected)")
    return document


@dataclass
class GateDecision:
    """The outcome of one gate evaluation; ``to_dict``/``to_json`` give the documented decision schema."""

    passed: bool
    metric: str
    challenger: str
    challenger_value: float
    best_baseline: str
    best_baseline_value: float
    champion_value: float | None
    margin: float
    min_improvement: float
    baselines: dict[str, float] = field(default_factory=dict)
    champion_version: str | None = None
    reasons: list[str] = field(default_factory=list)
    fairness_failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def canonical_metric(metric: str) -> str:
    """``"ndcg@10"`` -> ``"full.ndcg@10"`` (the harness's default protocol); anything else unchanged."""
    if "." not in metric and metric.partition("@")[0] in _PROTOCOL_METRICS:
        return f"full.{metric}"
    return metric


def metric_value(metrics: Mapping[str, Any], model: str, metric: str = DEFAULT_METRIC) -> float:
    """``metrics["models"][model]`` walked along the dotted ``metric`` (``"full.ndcg@10"``,
    ``"coverage@10"``).

    ``"ndcg@10"`` without a protocol means ``"full.ndcg@10"``. Raises GateError when the model or the metric
    is missing or the value is not a finite number.

    Args:
        metrics: a metrics.json dict.
        model: the model whose value is read.
        metric: the dotted metric.

    Returns:
        The value, finite.
    """
    metric = canonical_metric(metric)
    models = metrics.get("models") if isinstance(metrics, Mapping) else None
    if not isinstance(models, Mapping):
        raise GateError("metrics has no 'models' section; expected hyperrec.evaluation.harness metrics.json")
    if model not in models:
        raise GateError(f"model {model!r} is not in metrics.json (models: {sorted(models)})")
    parts = metric.split(".")
    if not metric or any(not part for part in parts):
        raise GateError(f"invalid metric name {metric!r}")
    leaf = parts[-1]
    if leaf in _NOT_A_SCORE or leaf.endswith("_se"):
        raise GateError(f"metric {metric!r} is not a higher-is-better score and cannot gate a model")
    node: Any = models[model]
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(parts[:depth]) or "<model>"
            available = sorted(node) if isinstance(node, Mapping) else []
            raise GateError(
                f"metric {metric!r} missing for model {model!r}: no {part!r} under {where} (has {available})"
            )
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise GateError(f"metric {metric!r} of model {model!r} is not a number: {node!r}")
    value = float(node)
    if not math.isfinite(value):
        raise GateError(f"metric {metric!r} of model {model!r} is not finite: {value}")
    return value


def decide(
    metrics: Mapping[str, Any],
    challenger: str,
    baselines: Sequence[str],
    champion_value: float | None,
    metric: str = DEFAULT_METRIC,
    min_improvement: float = 0.0,
    *,
    champion_version: str | None = None,
) -> GateDecision:
    """Compare ``challenger`` with every baseline and the champion on ``metric``; see the module doc.

    ``margin`` is the challenger's lead over the strongest opponent (best baseline or champion); the gate
    passes iff ``margin > min_improvement``. ``reasons`` says, per opponent, why it passed or failed.

    Args:
        metrics: a metrics.json dict (``hyperrec.evaluation.harness`` schema).
        challenger: the model that asks to be registered.
        baselines: the models it must beat (at least one; the challenger is not one of them).
        champion_value: the registered champion's value of ``metric``, or None when there is no champion.
        metric: the dotted metric (``"ndcg@10"`` means ``"full.ndcg@10"``).
        min_improvement: the lead the challenger needs over every opponent, >= 0 (0: strictly greater).
        champion_version: the champion's registry version, named in the reasons.

    Returns:
        The decision, with one reason line for the verdict and one per opponent.

    Raises:
        GateError: the inputs make no sense or a model or metric is missing (see ``metric_value``).
    """
    _check_min_improvement(min_improvement)
    baselines = _checked_baselines(baselines, challenger)
    champion_value = _checked_champion_value(champion_value)
    metric = canonical_metric(metric)
    value = metric_value(metrics, challenger, metric)
    baseline_values = {name: metric_value(metrics, name, metric) for name in baselines}
    best_baseline = min(baseline_values, key=lambda name: (-baseline_values[name], name))
    opponents = [(f"baseline {name}", score) for name, score in baseline_values.items()]
    if champion_value is not None:
        opponents.append(
            (f"champion v{champion_version}" if champion_version else "champion", champion_value)
        )
    margin = value - max(score for _, score in opponents)
    passed = margin > min_improvement
    reasons = [("PASS" if passed else "FAIL") + f": margin {margin:+.6g} over the strongest opponent "
               f"(needs > {min_improvement:g})"]
    for label, score in opponents:
        lead = value - score
        verdict = "beats" if lead > min_improvement else "does not beat"
        reasons.append(f"{challenger} {verdict} {label} on {metric}: {value:.6g} vs {score:.6g} "
                       f"(lead {lead:+.6g}, needs > {min_improvement:g})")
    if champion_value is None:
        reasons.append("no champion registered yet: only the baselines are compared")
    return GateDecision(
        passed=passed, metric=metric, challenger=challenger, challenger_value=value,
        best_baseline=best_baseline, best_baseline_value=baseline_values[best_baseline],
        champion_value=champion_value, margin=margin, min_improvement=float(min_improvement),
        baselines=baseline_values, champion_version=champion_version if champion_value is not None else None,
        reasons=reasons,
    )


def _check_min_improvement(min_improvement: float) -> None:
    if not isinstance(min_improvement, (int, float)) or isinstance(min_improvement, bool) \
            or not math.isfinite(min_improvement) or min_improvement < 0:
        raise GateError(f"min_improvement must be a finite number >= 0, got {min_improvement!r}")


def _checked_baselines(baselines: Sequence[str], challenger: str) -> list[str]:
    """The baselines without repeats; at least one, and never the challenger itself."""
    distinct = list(dict.fromkeys(baselines))
    if not distinct:
        raise GateError("the gate needs at least one baseline to compare against")
    if challenger in distinct:
        raise GateError(f"challenger {challenger!r} is itself one of the baselines {distinct}")
    return distinct


def _checked_champion_value(champion_value: float | None) -> float | None:
    if champion_value is None:
        return None
    if isinstance(champion_value, bool) or not isinstance(champion_value, (int, float)) \
            or not math.isfinite(champion_value):
        raise GateError(f"champion value must be a finite number or None, got {champion_value!r}")
    return float(champion_value)


def select_challenger(
    metrics: Mapping[str, Any], candidates: Sequence[str], metric: str = DEFAULT_METRIC
) -> str:
    """The candidate (learned model) with the highest ``metric``; ties go to the name that sorts first.

    Every candidate must be present in metrics.json with the metric (GateError otherwise).

    Args:
        metrics: a metrics.json dict.
        candidates: the learned models to choose from (duplicates are ignored).
        metric: the dotted metric that decides.

    Returns:
        The chosen model's name.
    """
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        raise GateError("no candidate model to select a challenger from")
    values = {name: metric_value(metrics, name, metric) for name in candidates}
    return min(values, key=lambda name: (-values[name], name))


def learned_models(metrics: Mapping[str, Any], baselines: Sequence[str]) -> list[str]:
    """Models of a metrics.json that are not baselines, sorted by name."""
    models = metrics.get("models") if isinstance(metrics, Mapping) else None
    if not isinstance(models, Mapping):
        raise GateError("metrics has no 'models' section; expected hyperrec.evaluation.harness metrics.json")
    return sorted(name for name in models if name not in set(baselines))


def apply_fairness_floors(
    decision: GateDecision, failures: Sequence[str], notes: Sequence[str] = ()
) -> GateDecision:
    """``decision`` with the fairness floors' verdict: any failure blocks registration, whatever the margin.

    The reasons gain one line per failure (``FAIL: fairness floor: ...``) or a PASS line, then the notes.

    Args:
        decision: the gate's decision; changed in place.
        failures: one line per fairness floor that fails.
        notes: lines added after the verdict (e.g. floors that could not be checked).

    Returns:
        ``decision``, failed when any floor fails.
    """
    decision.fairness_failures = list(failures)
    if failures:
        decision.passed = False
        if decision.reasons and decision.reasons[0].startswith("PASS"):
            decision.reasons[0] = "FAIL" + decision.reasons[0][len("PASS"):] + ", but a fairness floor fails"
        decision.reasons.extend(f"FAIL: fairness floor: {failure}" for failure in failures)
    else:
        decision.reasons.append("fairness floors: every floor that is set holds")
    decision.reasons.extend(f"note: {note}" for note in notes)
    return decision
