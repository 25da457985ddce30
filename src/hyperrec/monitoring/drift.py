"""Drift between a reference window (the champion's training interactions) and a current window, with Evidently.

Each check compares one distribution and yields an *effect size* computed by Evidently (normed Wasserstein
distance, Jensen-Shannon distance, a domain classifier's ROC AUC, or a relative rate change). A check reports
``drift`` only when

1. the effect size reaches its threshold (``drift.thresholds.<check>``), so that a huge sample does not turn a
   negligible difference into an alarm (a KS test on 50k rows flags almost anything), **and**
2. the difference is larger than the sampling noise of the two windows: a permutation test that reshuffles
   whole *users* between the windows (events of one user are not independent) gives a p-value <= ``alpha``; for
   embeddings, whose rows are users or distinct items, the classifier's held-out AUC is compared with its exact
   null distribution (Mann-Whitney). Small windows therefore need larger effects before they alarm.

Outputs: one HTML page (a summary table, then Evidently's widgets per group of checks), a JSON summary
(``drift_detected``, every check's score, threshold, p-value and status, both windows with time ranges and row
counts, online quality) and Evidently's own metric dump. docs/MONITORING.md explains the choices.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently import __version__ as EVIDENTLY_VERSION
from evidently.core.metric_types import render_widgets
from evidently.legacy.calculations.stattests import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from evidently.legacy.renderers.html_widgets import (
    CounterData,
    counter,
    group_widget,
    plotly_figure,
    table_data,
)
from evidently.metrics import ValueDrift
from evidently.metrics.embeddings import ModelDriftMethod
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

from hyperrec.monitoring import features as F
from hyperrec.monitoring.events import IMPRESSION, Window
from hyperrec.monitoring.settings import MonitoringConfig

logger = logging.getLogger(__name__)

REPORT_FILE = "drift_report.html"
SUMMARY_FILE = "drift_summary.json"
EVIDENTLY_FILE = "evidently.json"
SCHEMA_VERSION = 1

Status = Literal["drift", "ok", "insufficient_data", "not_applicable", "disabled"]

# --- a custom Evidently drift method for rates (click-through rate) -------------------------------------------
RELATIVE_RATE_CHANGE = "hyperrec_relative_rate_change"


def _relative_rate_change(
    reference_data: pd.Series, current_data: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    """|mean(current) - mean(reference)| / mean(reference) of a 0/1 column (the reference rate floored at 0.1%)."""
    reference_rate = float(np.mean(reference_data))
    score = abs(float(np.mean(current_data)) - reference_rate) / max(reference_rate, 1e-3)
    return score, score >= threshold


register_stattest(
    StatTest(
        name=RELATIVE_RATE_CHANGE,
        display_name="relative rate change |cur - ref| / ref",
        allowed_feature_types=[ColumnType.Numerical],
        default_threshold=0.2,
    ),
    _relative_rate_change,
)


@dataclass(frozen=True)
class CheckSpec:
    """One drift check: which column of which table, compared with which Evidently method."""

    name: str
    group: Literal["interactions", "embeddings", "predictions", "outcomes"]
    unit: str
    method: str
    column: str = ""
    categorical: bool = False
    description: str = ""


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec("event_mix", "interactions", "event", "jensenshannon", "event", True,
                  "share of each event type among user events (impressions excluded)"),
        CheckSpec("item_popularity", "interactions", "event", "wasserstein", "item_popularity", False,
                  "log(1 + reference events on the event's item), leave-one-out in the reference"),
        CheckSpec("rating", "interactions", "event", "wasserstein", "rating", False, "value of rating events"),
        CheckSpec("dwell_seconds", "interactions", "event", "wasserstein", "dwell_seconds", False,
                  "log(1 + dwell seconds) of view/dwell events"),
        CheckSpec("user_activity", "interactions", "user", "wasserstein", "user_activity", False,
                  "log(1 + events per active day), one row per user"),
        CheckSpec("item_embeddings", "embeddings", "item", "model", description=
                  "domain-classifier AUC on the embeddings of the distinct items consumed in each window"),
        CheckSpec("profile_embeddings", "embeddings", "user", "model", description=
                  "domain-classifier AUC on user profile embeddings"),
        CheckSpec("prediction_score", "predictions", "recommendation", "wasserstein", "prediction_score", False,
                  "model score of served recommendations"),
        CheckSpec("recommended_items", "predictions", "recommendation", "jensenshannon", "recommended_item", True,
                  "which items are recommended (top items of both windows, the rest as 'other')"),
        CheckSpec("ctr", "outcomes", "impression", RELATIVE_RATE_CHANGE, "clicked", False,
                  "click-through rate: clicked impressions / impressions"),
    )
}

GROUP_TITLES = {
    "interactions": "Interaction features",
    "embeddings": "Embedding drift",
    "predictions": "Prediction drift",
    "outcomes": "Outcome drift",
}


@dataclass
class CheckResult:
    """The verdict of one check."""

    name: str
    group: str
    unit: str
    method: str
    threshold: float
    status: Status
    score: float | None = None
    p_value: float | None = None
    reference_rows: int = 0
    current_rows: int = 0
    reference_users: int = 0
    current_users: int = 0
    alpha_per_check: float | None = None
    permutations: int | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drift"] = self.drift
        out["description"] = CHECKS[self.name].description
        return out


@dataclass
class DriftResult:
    """Everything one monitor run found; ``summary()`` is the JSON, ``html()`` the report page."""

    drift_detected: bool
    checks: dict[str, CheckResult]
    windows: dict[str, dict[str, Any]]
    quality: dict[str, Any]
    settings: dict[str, Any]
    generated_at: str
    wall_seconds: float
    evidently: dict[str, Any] = field(default_factory=dict, repr=False)
    sections: list[tuple[str, list[Any]]] = field(default_factory=list, repr=False)

    @property
    def drifted_checks(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.drift]

    def summary(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "drift_detected": self.drift_detected,
            "drifted_checks": self.drifted_checks,
            "generated_at": self.generated_at,
            "wall_seconds": round(self.wall_seconds, 3),
            "evidently_version": EVIDENTLY_VERSION,
            "windows": self.windows,
            "checks": {name: check.to_dict() for name, check in self.checks.items()},
            "quality": self.quality,
            "settings": self.settings,
        }

    def html(self) -> str:
        widgets = [group_widget(title="Drift summary", widgets=_summary_widgets(self))]
        widgets += [group_widget(title=title, widgets=items) for title, items in self.sections if items]
        return render_widgets(widgets)

    def save(
        self, report_path: Path | None = None, summary_path: Path | None = None, evidently_path: Path | None = None
    ) -> None:
        """Write whichever outputs have a path (parents are created; JSON has no NaN: null instead)."""
        outputs = {
            report_path: self.html,
            summary_path: lambda: _to_json(self.summary()),
            evidently_path: lambda: _to_json(self.evidently),
        }
        for path, render in outputs.items():
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(render(), encoding="utf-8")

    def write(self, output_dir: str | Path) -> dict[str, Path]:
        """Write drift_report.html, drift_summary.json and evidently.json into ``output_dir``."""
        output_dir = Path(output_dir)
        paths = {
            "report": output_dir / REPORT_FILE,
            "summary": output_dir / SUMMARY_FILE,
            "evidently": output_dir / EVIDENTLY_FILE,
        }
        self.save(paths["report"], paths["summary"], paths["evidently"])
        return paths


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _to_json(tree: Any) -> str:
    return json.dumps(_plain(tree), indent=2, allow_nan=False)


def run_drift_check(
    reference: pd.DataFrame | Window,
    current: pd.DataFrame | Window,
    config: MonitoringConfig | None = None,
    *,
    item_embeddings: np.ndarray | None = None,
    reference_profiles: np.ndarray | None = None,
    current_profiles: np.ndarray | None = None,
    reference_predictions: pd.DataFrame | None = None,
    current_predictions: pd.DataFrame | None = None,
    output_dir: str | Path | None = None,
) -> DriftResult:
    """Compare two windows of events and return (and, with ``output_dir``, write) the drift verdicts.

    ``reference``/``current``: monitoring frames (``hyperrec.monitoring.events``) or interaction frames with at
    least user_id, event, timestamp, or ``Window`` objects that also carry source and requested time range.
    ``item_embeddings``: the catalogue matrix, row = item_idx (enables item and, without explicit profiles,
    profile embedding drift). ``reference_profiles``/``current_profiles``: user profile embeddings, row = user.
    ``*_predictions``: served recommendations with item_id and optionally user_id and score; when absent and
    both windows hold impressions, the impressions are the predictions.
    """
    started = time.perf_counter()
    cfg = config or MonitoringConfig()
    settings = cfg.drift
    ref_window = reference if isinstance(reference, Window) else Window.of("reference", reference)
    cur_window = current if isinstance(current, Window) else Window.of("current", current)
    rng = np.random.default_rng(settings.seed)

    ref_events, cur_events = F.behaviour_events(ref_window.frame), F.behaviour_events(cur_window.frame)
    counts = F.item_reference_counts(ref_events)
    ref_ev = F.event_features(ref_events, counts, is_reference=True)
    cur_ev = F.event_features(cur_events, counts, is_reference=False)
    ref_users, cur_users = F.user_features(ref_events), F.user_features(cur_events)

    results: dict[str, CheckResult] = {}
    pending: dict[str, _Significance] = {}
    sections: list[tuple[str, list[Any]]] = []
    evidently_dump: dict[str, Any] = {}

    def tabular(key: str, title: str, names: list[str], ref: pd.DataFrame | None, cur: pd.DataFrame | None,
                missing: str) -> None:
        widgets, dump = _tabular_checks(names, ref, cur, cfg, rng, missing, results, pending)
        sections.append((title, widgets))
        if dump:
            evidently_dump[key] = dump

    # 1. effect sizes (Evidently) of every check that has data
    tabular("events", "Interaction features (one row per user event)",
            ["event_mix", "item_popularity", "rating", "dwell_seconds"], ref_ev, cur_ev, "no user events")
    tabular("users", "Interaction features (one row per user)", ["user_activity"], ref_users, cur_users,
            "no user events")

    emb_widgets: list[Any] = []
    item_ref = item_cur = prof_ref = prof_cur = units = None
    if item_embeddings is not None:
        item_embeddings = np.asarray(item_embeddings, dtype="float64")
        item_ref = F.consumed_item_embeddings(ref_events, item_embeddings)
        item_cur = F.consumed_item_embeddings(cur_events, item_embeddings)
        prof_ref = F.mean_profile_embeddings(ref_events, item_embeddings)
        prof_cur = F.mean_profile_embeddings(cur_events, item_embeddings)
        units = (*F.user_item_pairs(ref_events, len(item_embeddings)),
                 *F.user_item_pairs(cur_events, len(item_embeddings)), item_embeddings)
    if reference_profiles is not None and current_profiles is not None:
        prof_ref, prof_cur = np.asarray(reference_profiles), np.asarray(current_profiles)
    widget_builders = [
        _embedding_check(name, ref_m, cur_m, cfg, rng, missing, check_units, results, pending)
        for name, ref_m, cur_m, missing, check_units in (
            ("item_embeddings", item_ref, item_cur, "no item embeddings given", units),
            ("profile_embeddings", prof_ref, prof_cur, "no profile or item embeddings given", None),
        )
    ]
    sections.append(("Embedding drift (Evidently domain classifier)", emb_widgets))  # filled after step 2

    if (reference_predictions is None and current_predictions is None
            and _has_impressions(ref_window.frame) and _has_impressions(cur_window.frame)):
        reference_predictions = F.predictions_from_feedback(ref_window.frame)
        current_predictions = F.predictions_from_feedback(cur_window.frame)
    ref_pred = cur_pred = None
    if reference_predictions is not None and current_predictions is not None:
        ref_pred, cur_pred = F.prediction_features(
            reference_predictions, current_predictions, settings.top_recommended_items
        )
    tabular("predictions", "Prediction drift (one row per served recommendation)",
            ["prediction_score", "recommended_items"], ref_pred, cur_pred, "no predictions given for both windows")

    cur_outcomes = F.impression_outcomes(cur_window.frame) if _has_impressions(cur_window.frame) else None
    ref_outcomes = F.impression_outcomes(ref_window.frame) if _has_impressions(ref_window.frame) else None
    tabular("outcomes", "Outcome drift (one row per impression)", ["ctr"], ref_outcomes, cur_outcomes,
            "impressions missing in a window")

    # 2. significance of the checks over their threshold, at the Bonferroni level of the checks that ran
    scored = [c for c in results.values() if c.score is not None]
    level = settings.alpha / max(len(scored), 1)
    max_permutations = math.ceil(max(len(scored), 1) / settings.alpha) - 1
    for check in scored:
        check.alpha_per_check = level
    for name, significance in pending.items():
        check = results[name]
        check.p_value, check.permutations = significance(max_permutations, settings.permutation_early_stop)
        if check.p_value <= level:
            check.status = "drift"
            check.detail = "above threshold and beyond sampling noise"
        else:
            check.status = "ok"
            check.detail = f"above threshold but within the sampling noise of these windows ({significance.null})"

    for build in widget_builders:
        emb_widgets += build()

    quality = _quality(cur_outcomes, cfg)
    ordered = {name: results[name] for name in CHECKS}
    drift_detected = any(check.drift for check in ordered.values())
    result = DriftResult(
        drift_detected=drift_detected,
        checks=ordered,
        windows={"reference": ref_window.describe(), "current": cur_window.describe()},
        quality=quality,
        settings={
            "alpha": settings.alpha,
            "checks_run": len(scored),
            "alpha_per_check": level,
            "max_permutations": max_permutations,
            "permutation_early_stop": settings.permutation_early_stop,
            "min_users": settings.min_users,
            "min_rows": settings.min_rows,
            "seed": settings.seed,
        },
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        wall_seconds=time.perf_counter() - started,
        evidently=evidently_dump,
        sections=sections,
    )
    logger.info(
        "drift check: drift_detected=%s drifted=%s (%d vs %d rows) in %.1f s",
        drift_detected, result.drifted_checks, len(ref_window.frame), len(cur_window.frame), result.wall_seconds,
    )
    if output_dir is not None:
        result.write(output_dir)
    return result


def _has_impressions(frame: pd.DataFrame) -> bool:
    return bool((frame["event"] == IMPRESSION).any())


# --- significance ------------------------------------------------------------------------------------------
@dataclass
class _Significance:
    """Deferred p-value of one check: ``(max_permutations, early_stop) -> (p_value, permutations run)``."""

    compute: Callable[[int, int], tuple[float, int | None]]
    null: str

    def __call__(self, max_permutations: int, early_stop: int) -> tuple[float, int | None]:
        return self.compute(max_permutations, early_stop)


class _UnitShuffler:
    """Random reassignments of whole units (window-user pairs) to the reference side, unit counts kept."""

    def __init__(self, ref_units: np.ndarray, cur_units: np.ndarray, rng: np.random.Generator) -> None:
        ref_codes = pd.factorize(ref_units)[0]
        cur_codes = pd.factorize(cur_units)[0]
        self.n_ref = int(ref_codes.max()) + 1
        self.n_total = self.n_ref + int(cur_codes.max()) + 1
        self.codes = np.concatenate([ref_codes, cur_codes + self.n_ref])
        self.rng = rng

    def draw(self) -> np.ndarray:
        """A row mask of the permuted reference side."""
        chosen = np.zeros(self.n_total, dtype=bool)
        chosen[self.rng.permutation(self.n_total)[: self.n_ref]] = True
        return chosen[self.codes]


def _sequential_p_value(
    observed: float, statistic: Callable[[np.ndarray], float], shuffler: _UnitShuffler,
    max_permutations: int, early_stop: int,
) -> tuple[float, int]:
    """Besag-Clifford sequential permutation p-value: stop at ``early_stop`` exceedances, else run them all."""
    tolerance = 1e-9 * max(1.0, abs(observed))
    exceed = 0
    for done in range(1, max_permutations + 1):
        exceed += bool(statistic(shuffler.draw()) >= observed - tolerance)
        if exceed >= early_stop:
            return exceed / done, done
    return (exceed + 1) / (max_permutations + 1), max_permutations


def _normal_permutation_p_value(
    observed: float, statistic: Callable[[np.ndarray], float], shuffler: _UnitShuffler,
    permutations: int, early_stop: int,
) -> tuple[float, int]:
    """P-value of an AUC from a normal fit to its user-permutation null (mean and sd of the permuted AUCs).

    An AUC is a U-statistic, close to normal; permuting whole users gives its spread including the clustering
    of items by user. A few dozen classifier fits then reach tail probabilities that hundreds of permutations
    would need empirically. Noise is still dismissed early (``early_stop`` permuted AUCs at the observed one).
    """
    scores: list[float] = []
    exceed = 0
    for done in range(1, permutations + 1):
        scores.append(statistic(shuffler.draw()))
        exceed += bool(scores[-1] >= observed)
        if exceed >= early_stop:
            return exceed / done, done
    mean, sd = float(np.mean(scores)), float(np.std(scores, ddof=1))
    if sd <= 0:
        return (0.0 if observed > mean else 1.0), permutations
    return float(norm.sf((observed - mean) / sd)), permutations


def fast_statistic(method: str, categorical: bool, values: np.ndarray) -> Callable[[np.ndarray], float]:
    """The Evidently statistic ``method`` over ``values``, as a function of the reference-row mask.

    Exact re-implementations (tests compare them with Evidently) that reuse one sort / one category coding, so
    that hundreds of permutations stay cheap: normed Wasserstein is scipy's CDF formula over the pooled sorted
    values divided by max(std(reference), 0.001); Jensen-Shannon is scipy's distance (natural log) of the
    category shares; the rate change is |mean(cur) - mean(ref)| / max(mean(ref), 0.001).
    """
    if method == "wasserstein" and not categorical:
        numbers = values.astype("float64")
        order = np.argsort(numbers, kind="mergesort")
        deltas = np.diff(numbers[order])

        def wasserstein(mask: np.ndarray) -> float:
            ref = mask[order]
            n_ref = ref.sum()
            ref_cdf = np.cumsum(ref)[:-1] / n_ref
            cur_cdf = np.cumsum(~ref)[:-1] / (len(ref) - n_ref)
            distance = float(np.sum(np.abs(ref_cdf - cur_cdf) * deltas))
            return distance / max(float(np.std(numbers[mask])), 0.001)

        return wasserstein
    if method == "jensenshannon":
        codes, uniques = pd.factorize(values)
        k = len(uniques)

        def jensen_shannon(mask: np.ndarray) -> float:
            ref = np.bincount(codes[mask], minlength=k) / mask.sum()
            cur = np.bincount(codes[~mask], minlength=k) / (~mask).sum()
            return float(jensenshannon(ref, cur))

        return jensen_shannon
    if method == RELATIVE_RATE_CHANGE:
        numbers = values.astype("float64")

        def rate_change(mask: np.ndarray) -> float:
            return _relative_rate_change(numbers[mask], numbers[~mask], ColumnType.Numerical, 0.0)[0]

        return rate_change
    raise ValueError(f"no permutation statistic for method {method!r}")


def _auc_p_value(auc: float, n_reference: int, n_current: int) -> float:
    """One-sided p-value of a held-out AUC under 'same distribution' (Mann-Whitney null, normal approximation).

    Evidently's domain classifier scores a random half of the pooled rows; under the null hypothesis its scores
    are independent of the labels, so the AUC is distributed as U / (n1 n2) with n1, n2 the held-out counts.
    """
    n1, n2 = max(n_reference / 2, 1.0), max(n_current / 2, 1.0)
    sd = math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    return float(norm.sf((auc - 0.5) / sd))


# --- tabular checks ----------------------------------------------------------------------------------------
def _base(spec: CheckSpec, threshold: float) -> dict[str, Any]:
    return {"name": spec.name, "group": spec.group, "unit": spec.unit, "method": spec.method,
            "threshold": threshold}


def _sizes(ref_rows: int, cur_rows: int, ref_units: int, cur_units: int) -> dict[str, int]:
    return {"reference_rows": int(ref_rows), "current_rows": int(cur_rows),
            "reference_users": int(ref_units), "current_users": int(cur_units)}


def _precheck(
    spec: CheckSpec, ref: pd.DataFrame | None, cur: pd.DataFrame | None, cfg: MonitoringConfig, missing: str
) -> CheckResult | tuple[pd.DataFrame, pd.DataFrame]:
    """Either a final result (disabled / not applicable / too little data) or the non-null rows of both sides."""
    threshold = getattr(cfg.drift.thresholds, spec.name)
    base = _base(spec, threshold)
    if spec.name in cfg.drift.disabled_checks:
        return CheckResult(**base, status="disabled", detail="listed in drift.disabled_checks")
    if ref is None or cur is None:
        return CheckResult(**base, status="not_applicable", detail=missing)
    ref_rows = ref.loc[ref[spec.column].notna(), ["user_id", spec.column]]
    cur_rows = cur.loc[cur[spec.column].notna(), ["user_id", spec.column]]
    sizes = _sizes(len(ref_rows), len(cur_rows), ref_rows["user_id"].nunique(), cur_rows["user_id"].nunique())
    if ref_rows.empty and cur_rows.empty:
        return CheckResult(**base, status="not_applicable", detail=f"no {spec.column} values in either window",
                           **sizes)
    if min(sizes["reference_rows"], sizes["current_rows"]) < cfg.drift.min_rows or min(
        sizes["reference_users"], sizes["current_users"]
    ) < cfg.drift.min_users:
        return CheckResult(
            **base, status="insufficient_data", **sizes,
            detail=f"need >= {cfg.drift.min_rows} rows and >= {cfg.drift.min_users} users in each window",
        )
    return ref_rows, cur_rows


def _tabular_checks(
    names: list[str],
    ref: pd.DataFrame | None,
    cur: pd.DataFrame | None,
    cfg: MonitoringConfig,
    rng: np.random.Generator,
    missing: str,
    results: dict[str, CheckResult],
    pending: dict[str, _Significance],
) -> tuple[list[Any], dict[str, Any]]:
    """Run one Evidently report (a ``ValueDrift`` per check) over a table; fill ``results`` and ``pending``."""
    runnable: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for name in names:
        outcome = _precheck(CHECKS[name], ref, cur, cfg, missing)
        if isinstance(outcome, CheckResult):
            results[name] = outcome
        else:
            runnable[name] = outcome
    if not runnable:
        return [], {}

    assert ref is not None and cur is not None
    specs = [CHECKS[name] for name in runnable]
    columns = [spec.column for spec in specs]
    definition = DataDefinition(
        numerical_columns=[s.column for s in specs if not s.categorical] or None,
        categorical_columns=[s.column for s in specs if s.categorical] or None,
    )
    metrics = [
        ValueDrift(column=s.column, method=s.method, threshold=getattr(cfg.drift.thresholds, s.name)) for s in specs
    ]
    snapshot = Report(metrics).run(
        Dataset.from_pandas(cur[columns].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(ref[columns].reset_index(drop=True), data_definition=definition),
    )
    dump = snapshot.dict()
    scores = {entry["config"]["column"]: float(entry["value"]) for entry in dump["metrics"]}
    widgets = [w for metric in snapshot.metric_results.values() for w in metric.get_widgets()]

    for spec in specs:
        ref_rows, cur_rows = runnable[spec.name]
        score = scores[spec.column]
        check = CheckResult(
            name=spec.name, group=spec.group, unit=spec.unit, method=spec.method,
            threshold=getattr(cfg.drift.thresholds, spec.name), status="ok", score=score,
            reference_rows=len(ref_rows), current_rows=len(cur_rows),
            reference_users=int(ref_rows["user_id"].nunique()), current_users=int(cur_rows["user_id"].nunique()),
            detail="below threshold",
        )
        if spec.name == "ctr":
            check.extra = {"reference_ctr": float(ref_rows["clicked"].mean()),
                           "current_ctr": float(cur_rows["clicked"].mean())}
        results[spec.name] = check
        if math.isfinite(score) and score >= check.threshold:
            values = np.concatenate([ref_rows[spec.column].to_numpy(), cur_rows[spec.column].to_numpy()])
            shuffler = _UnitShuffler(ref_rows["user_id"].to_numpy(), cur_rows["user_id"].to_numpy(), rng)
            statistic = fast_statistic(spec.method, spec.categorical, values)
            pending[spec.name] = _Significance(
                lambda n, stop, st=statistic, sh=shuffler, obs=score: _sequential_p_value(obs, st, sh, n, stop),
                null="user permutation test",
            )
    return widgets, dump


# --- embedding checks --------------------------------------------------------------------------------------
def _domain_auc(ref: np.ndarray, cur: np.ndarray, threshold: float) -> float:
    """ROC AUC of Evidently's embedding domain classifier (held-out half of the pooled rows)."""
    columns = [f"e{i}" for i in range(ref.shape[1])]
    method = ModelDriftMethod(threshold=threshold, bootstrap=False)
    auc, _, _ = method(pd.DataFrame(cur, columns=columns), pd.DataFrame(ref, columns=columns))
    return float(auc)


class _Embeddings:
    """Embedding rows of both windows, projected on the top principal components of their pooled sample."""

    def __init__(self, matrix_ref: np.ndarray, matrix_cur: np.ndarray, cfg: MonitoringConfig,
                 rng: np.random.Generator) -> None:
        self.max_rows = cfg.drift.embedding_max_rows
        self.rng = rng
        k = cfg.drift.embedding_pca_components
        self.projection = None
        if k is not None and matrix_ref.shape[1] > k:
            from sklearn.decomposition import PCA

            pooled = np.vstack([self.sample(matrix_ref), self.sample(matrix_cur)])
            self.projection = PCA(n_components=k, random_state=0).fit(pooled)

    def sample(self, matrix: np.ndarray) -> np.ndarray:
        if len(matrix) <= self.max_rows:
            return matrix
        return matrix[self.rng.choice(len(matrix), self.max_rows, replace=False)]

    def prepare(self, matrix: np.ndarray) -> np.ndarray:
        rows = self.sample(np.asarray(matrix, dtype="float64"))
        return self.projection.transform(rows) if self.projection is not None else rows


def _embedding_check(
    name: str,
    ref_matrix: np.ndarray | None,
    cur_matrix: np.ndarray | None,
    cfg: MonitoringConfig,
    rng: np.random.Generator,
    missing: str,
    units: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None,
    results: dict[str, CheckResult],
    pending: dict[str, _Significance],
) -> Callable[[], list[Any]]:
    """Domain-classifier AUC of two embedding samples; fills ``results`` (and ``pending``).

    Returns a function that renders the check's widgets once its verdict is final.

    ``units`` (item check only): (ref unit codes, ref item_idx, cur unit codes, cur item_idx, catalogue matrix);
    the rows are the distinct items of each window, which depend on *who* was active, so significance comes
    from permuting users and rebuilding both item sets. Without ``units`` the rows are users (independent), and
    the exact Mann-Whitney null of the held-out AUC gives the p-value.
    """
    spec = CHECKS[name]
    settings = cfg.drift
    threshold = getattr(settings.thresholds, name)
    base = _base(spec, threshold)
    if name in settings.disabled_checks:
        results[name] = CheckResult(**base, status="disabled", detail="listed in drift.disabled_checks")
        return list
    if ref_matrix is None or cur_matrix is None:
        results[name] = CheckResult(**base, status="not_applicable", detail=missing)
        return list
    sizes = _sizes(len(ref_matrix), len(cur_matrix), len(ref_matrix), len(cur_matrix))
    if units is not None:
        sizes.update(reference_users=len(np.unique(units[0])), current_users=len(np.unique(units[2])))
    if min(sizes["reference_rows"], sizes["current_rows"]) < settings.min_rows or (
        units is not None and min(sizes["reference_users"], sizes["current_users"]) < settings.min_users
    ):
        results[name] = CheckResult(**base, status="insufficient_data", **sizes,
                                    detail=f"need >= {settings.min_rows} rows and >= {settings.min_users} "
                                    "users in each window")
        return list
    if ref_matrix.shape[1] != cur_matrix.shape[1]:
        results[name] = CheckResult(**base, status="not_applicable", **sizes,
                                    detail="reference and current embeddings differ in dimension")
        return list

    space = _Embeddings(ref_matrix, cur_matrix, cfg, rng)
    ref_s, cur_s = space.prepare(ref_matrix), space.prepare(cur_matrix)
    auc = _domain_auc(ref_s, cur_s, threshold)
    check = CheckResult(**base, status="ok", score=auc, detail="below threshold", **sizes)
    results[name] = check
    if auc >= threshold:
        if units is None:
            p_value = _auc_p_value(auc, len(ref_s), len(cur_s))
            pending[name] = _Significance(lambda n, stop, p=p_value: (p, None), null="exact AUC null")
        else:
            ref_codes, ref_items, cur_codes, cur_items, catalogue = units
            shuffler = _UnitShuffler(ref_codes, cur_codes, rng)
            items = np.concatenate([ref_items, cur_items])

            def statistic(mask: np.ndarray) -> float:
                return _domain_auc(space.prepare(catalogue[np.unique(items[mask])]),
                                   space.prepare(catalogue[np.unique(items[~mask])]), threshold)

            pending[name] = _Significance(
                lambda n, stop: _normal_permutation_p_value(
                    auc, statistic, shuffler, settings.auc_null_permutations, stop),
                null="user permutation test, normal tail",
            )
    return lambda: _embedding_widgets(check, ref_s, cur_s, rng)


def _embedding_widgets(check: CheckResult, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> list:
    import plotly.graph_objects as go
    from sklearn.decomposition import PCA

    def head(matrix: np.ndarray, n: int = 500) -> np.ndarray:
        return matrix if len(matrix) <= n else matrix[rng.choice(len(matrix), n, replace=False)]

    ref_h, cur_h = head(ref), head(cur)
    figure = go.Figure()
    if ref.shape[1] >= 2:
        pca = PCA(n_components=2, random_state=0).fit(np.vstack([ref_h, cur_h]))
        for label, rows in (("reference", ref_h), ("current", cur_h)):
            points = pca.transform(rows)
            figure.add_trace(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", name=label,
                                          marker={"size": 4, "opacity": 0.5}))
        figure.update_layout(xaxis_title="PC 1", yaxis_title="PC 2")
    counters = counter(
        title=f"{check.name}: {CHECKS[check.name].description}",
        counters=[
            CounterData("status", check.status),
            CounterData("domain classifier ROC AUC", f"{check.score:.3f}"),
            CounterData("threshold", f"{check.threshold:.3f}"),
            CounterData("p-value", _fmt(check.p_value)),
            CounterData("rows (ref / cur)", f"{check.reference_rows} / {check.current_rows}"),
        ],
    )
    return [counters, plotly_figure(title=f"{check.name}: first two principal components (sample)", figure=figure)]


def _quality(outcomes: pd.DataFrame | None, cfg: MonitoringConfig) -> dict[str, Any]:
    settings = cfg.quality
    out: dict[str, Any] = {
        "metric": settings.metric, "value": None, "floor": settings.floor, "impressions": 0, "clicks": 0,
        "min_impressions": settings.min_impressions, "below_floor": False,
    }
    if outcomes is None or outcomes.empty:
        return {**out, "status": "not_applicable", "detail": "no impressions in the current window"}
    impressions, clicks = len(outcomes), int(outcomes["clicked"].sum())
    out.update(impressions=impressions, clicks=clicks, value=clicks / impressions)
    if impressions < settings.min_impressions:
        return {**out, "status": "insufficient_data",
                "detail": f"{impressions} impressions < min_impressions {settings.min_impressions}"}
    if settings.floor is None:
        return {**out, "status": "ok", "detail": "no floor configured"}
    below = out["value"] < settings.floor
    return {**out, "below_floor": below, "status": "below_floor" if below else "ok",
            "detail": f"CTR {out['value']:.4f} {'<' if below else '>='} floor {settings.floor}"}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}"


def _summary_widgets(result: DriftResult) -> list[Any]:
    ref, cur = result.windows["reference"], result.windows["current"]
    widgets = [
        counter(
            title="Verdict",
            counters=[
                CounterData("drift detected", "YES" if result.drift_detected else "no"),
                CounterData("drifted checks", ", ".join(result.drifted_checks) or "none"),
                CounterData("quality (CTR)", f"{result.quality['status']}"
                            + (f" {result.quality['value']:.4f}" if result.quality["value"] is not None else "")),
            ],
        ),
        table_data(
            title="Windows",
            column_names=["window", "source", "first event", "last event", "rows", "users", "items"],
            data=[[w["name"], w["source"], w["first_event"], w["last_event"], w["rows"], w["users"], w["items"]]
                  for w in (ref, cur)],
        ),
        table_data(
            title=f"Checks: drift = score >= threshold AND p-value <= alpha / checks run = "
                  f"{result.settings['alpha']} / {result.settings['checks_run']}. Evidently's widgets below "
                  "compare only score and threshold.",
            column_names=["check", "group", "method", "score", "threshold", "p-value", "status", "rows ref / cur",
                          "users ref / cur", "detail"],
            data=[
                [c.name, c.group, c.method, _fmt(c.score), _fmt(c.threshold), _fmt(c.p_value), c.status,
                 f"{c.reference_rows} / {c.current_rows}", f"{c.reference_users} / {c.current_users}", c.detail]
                for c in result.checks.values()
            ],
        ),
    ]
    return widgets
