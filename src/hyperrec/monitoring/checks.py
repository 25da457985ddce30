"""The drift checks: each is a small callable that scores its distributions with Evidently.

A check call fills ``CheckRun.results`` with a verdict per check (``ok`` below the threshold, or disabled /
not applicable / too little data) and, for every effect over its threshold, a deferred p-value in
``CheckRun.pending``; the caller then decides significance for all checks together (Bonferroni over the checks
that ran). Each call returns a function that renders its report widgets once the verdicts are final.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.metrics.embeddings import ModelDriftMethod

from hyperrec.monitoring.report import embedding_widgets
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.monitoring.significance import (
    Significance,
    UnitShuffler,
    auc_p_value,
    fast_statistic,
    normal_permutation_p_value,
    sequential_p_value,
)
from hyperrec.monitoring.verdicts import CHECKS, CheckResult, CheckSpec, base_fields, sizes

WidgetBuilder = Callable[[], list[Any]]
Tables = tuple[pd.DataFrame | None, pd.DataFrame | None]
# (ref unit codes, ref item_idx, cur unit codes, cur item_idx, catalogue matrix)
ItemUnits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class CheckRun:
    """What the checks of one monitor run share: settings, one random stream, and what they found."""

    cfg: MonitoringConfig
    rng: np.random.Generator
    results: dict[str, CheckResult] = field(default_factory=dict)
    pending: dict[str, Significance] = field(default_factory=dict)
    evidently: dict[str, Any] = field(default_factory=dict)

    def threshold(self, name: str) -> float:
        return getattr(self.cfg.drift.thresholds, name)


@dataclass(frozen=True)
class TabularChecks:
    """Checks over the columns of one table (one Evidently report, a ``ValueDrift`` per check)."""

    key: str
    title: str
    names: tuple[str, ...]
    missing: str

    def __call__(self, run: CheckRun, tables: Tables) -> WidgetBuilder:
        widgets, dump = _tabular_checks(self.names, *tables, run, self.missing)
        if dump:
            run.evidently[self.key] = dump
        return lambda: widgets


@dataclass(frozen=True)
class EmbeddingCheck:
    """One domain-classifier check over two embedding samples (rows = users or distinct items)."""

    name: str
    missing: str

    def __call__(
        self,
        run: CheckRun,
        matrices: tuple[np.ndarray | None, np.ndarray | None],
        units: ItemUnits | None = None,
    ) -> WidgetBuilder:
        return _embedding_check(self.name, *matrices, run, self.missing, units)


def _precheck(
    spec: CheckSpec, ref: pd.DataFrame | None, cur: pd.DataFrame | None, cfg: MonitoringConfig, missing: str
) -> CheckResult | tuple[pd.DataFrame, pd.DataFrame]:
    """Either a final result (disabled / not applicable / too little data) or the non-null rows of both
    sides."""
    base = base_fields(spec, getattr(cfg.drift.thresholds, spec.name))
    if spec.name in cfg.drift.disabled_checks:
        return CheckResult(**base, status="disabled", detail="listed in drift.disabled_checks")
    if ref is None or cur is None:
        return CheckResult(**base, status="not_applicable", detail=missing)
    ref_rows = ref.loc[ref[spec.column].notna(), ["user_id", spec.column]]
    cur_rows = cur.loc[cur[spec.column].notna(), ["user_id", spec.column]]
    counts = sizes(len(ref_rows), len(cur_rows), ref_rows["user_id"].nunique(), cur_rows["user_id"].nunique())
    if ref_rows.empty and cur_rows.empty:
        return CheckResult(
            **base, status="not_applicable", detail=f"no {spec.column} values in either window", **counts
        )
    if min(counts["reference_rows"], counts["current_rows"]) < cfg.drift.min_rows or min(
        counts["reference_users"], counts["current_users"]
    ) < cfg.drift.min_users:
        return CheckResult(
            **base, status="insufficient_data", **counts,
            detail=f"need >= {cfg.drift.min_rows} rows and >= {cfg.drift.min_users} users in each window",
        )
    return ref_rows, cur_rows


def _evidently_scores(
    specs: list[CheckSpec], ref: pd.DataFrame, cur: pd.DataFrame, run: CheckRun
) -> tuple[dict[str, float], list[Any], dict[str, Any]]:
    """Evidently's drift score per column, its widgets and its metric dump."""
    columns = [spec.column for spec in specs]
    definition = DataDefinition(
        numerical_columns=[s.column for s in specs if not s.categorical] or None,
        categorical_columns=[s.column for s in specs if s.categorical] or None,
    )
    metrics = [ValueDrift(column=s.column, method=s.method, threshold=run.threshold(s.name)) for s in specs]
    snapshot = Report(metrics).run(
        Dataset.from_pandas(cur[columns].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(ref[columns].reset_index(drop=True), data_definition=definition),
    )
    dump = snapshot.dict()
    scores = {entry["config"]["column"]: float(entry["value"]) for entry in dump["metrics"]}
    widgets = [w for metric in snapshot.metric_results.values() for w in metric.get_widgets()]
    return scores, widgets, dump


def _tabular_checks(
    names: tuple[str, ...], ref: pd.DataFrame | None, cur: pd.DataFrame | None, run: CheckRun, missing: str
) -> tuple[list[Any], dict[str, Any]]:
    """Run one Evidently report over a table; fill ``run.results`` and ``run.pending``."""
    runnable: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for name in names:
        outcome = _precheck(CHECKS[name], ref, cur, run.cfg, missing)
        if isinstance(outcome, CheckResult):
            run.results[name] = outcome
        else:
            runnable[name] = outcome
    if not runnable:
        return [], {}

    assert ref is not None and cur is not None
    specs = [CHECKS[name] for name in runnable]
    scores, widgets, dump = _evidently_scores(specs, ref, cur, run)
    for spec in specs:
        _score_column(spec, *runnable[spec.name], scores[spec.column], run)
    return widgets, dump


def _score_column(
    spec: CheckSpec, ref_rows: pd.DataFrame, cur_rows: pd.DataFrame, score: float, run: CheckRun
) -> None:
    """The verdict of one tabular check; a user-permutation test is queued when the effect is over
    threshold."""
    check = CheckResult(
        **base_fields(spec, run.threshold(spec.name)), status="ok", score=score,
        **sizes(len(ref_rows), len(cur_rows), ref_rows["user_id"].nunique(), cur_rows["user_id"].nunique()),
        detail="below threshold",
    )
    if spec.name == "ctr":
        check.extra = {"reference_ctr": float(ref_rows["clicked"].mean()),
                       "current_ctr": float(cur_rows["clicked"].mean())}
    run.results[spec.name] = check
    if math.isfinite(score) and score >= check.threshold:
        values = np.concatenate([ref_rows[spec.column].to_numpy(), cur_rows[spec.column].to_numpy()])
        shuffler = UnitShuffler(ref_rows["user_id"].to_numpy(), cur_rows["user_id"].to_numpy(), run.rng)
        statistic = fast_statistic(spec.method, spec.categorical, values)
        run.pending[spec.name] = Significance(
            lambda n, stop: sequential_p_value(score, statistic, shuffler, n, stop),
            null="user permutation test",
        )


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


def _embedding_precheck(
    name: str, ref_matrix: np.ndarray | None, cur_matrix: np.ndarray | None, run: CheckRun, missing: str,
    units: ItemUnits | None,
) -> CheckResult | None:
    """A final result (disabled / not applicable / too little data), or None when the check can run."""
    settings = run.cfg.drift
    base = base_fields(CHECKS[name], run.threshold(name))
    if name in settings.disabled_checks:
        return CheckResult(**base, status="disabled", detail="listed in drift.disabled_checks")
    if ref_matrix is None or cur_matrix is None:
        return CheckResult(**base, status="not_applicable", detail=missing)
    counts = sizes(len(ref_matrix), len(cur_matrix), len(ref_matrix), len(cur_matrix))
    if units is not None:
        counts.update(reference_users=len(np.unique(units[0])), current_users=len(np.unique(units[2])))
    if min(counts["reference_rows"], counts["current_rows"]) < settings.min_rows or (
        units is not None and min(counts["reference_users"], counts["current_users"]) < settings.min_users
    ):
        return CheckResult(**base, status="insufficient_data", **counts,
                           detail=f"need >= {settings.min_rows} rows and >= {settings.min_users} "
                           "users in each window")
    if ref_matrix.shape[1] != cur_matrix.shape[1]:
        return CheckResult(**base, status="not_applicable", **counts,
                           detail="reference and current embeddings differ in dimension")
    return None


def _embedding_check(
    name: str, ref_matrix: np.ndarray | None, cur_matrix: np.ndarray | None, run: CheckRun, missing: str,
    units: ItemUnits | None,
) -> WidgetBuilder:
    """Domain-classifier AUC of two embedding samples; fills ``run.results`` (and ``run.pending``).

    ``units`` (item check only): the rows are the distinct items of each window, which depend on *who* was
    active, so significance comes from permuting users and rebuilding both item sets. Without ``units`` the
    rows are users (independent), and the exact Mann-Whitney null of the held-out AUC gives the p-value.
    """
    final = _embedding_precheck(name, ref_matrix, cur_matrix, run, missing, units)
    if final is not None:
        run.results[name] = final
        return list
    assert ref_matrix is not None and cur_matrix is not None
    threshold = run.threshold(name)
    space = _Embeddings(ref_matrix, cur_matrix, run.cfg, run.rng)
    ref_s, cur_s = space.prepare(ref_matrix), space.prepare(cur_matrix)
    auc = _domain_auc(ref_s, cur_s, threshold)
    check = CheckResult(
        **base_fields(CHECKS[name], threshold),
        status="ok",
        score=auc,
        detail="below threshold",
        **sizes(len(ref_matrix), len(cur_matrix), len(ref_matrix), len(cur_matrix)),
    )
    if units is not None:
        check.reference_users, check.current_users = len(np.unique(units[0])), len(np.unique(units[2]))
    run.results[name] = check
    if auc >= threshold:
        run.pending[name] = _auc_significance(auc, ref_s, cur_s, space, threshold, units, run)
    return lambda: embedding_widgets(check, ref_s, cur_s, run.rng)


def _auc_significance(
    auc: float, ref_s: np.ndarray, cur_s: np.ndarray, space: _Embeddings, threshold: float,
    units: ItemUnits | None, run: CheckRun,
) -> Significance:
    if units is None:
        p_value = auc_p_value(auc, len(ref_s), len(cur_s))
        return Significance(lambda n, stop: (p_value, None), null="exact AUC null")
    ref_codes, ref_items, cur_codes, cur_items, catalogue = units
    shuffler = UnitShuffler(ref_codes, cur_codes, run.rng)
    items = np.concatenate([ref_items, cur_items])

    def statistic(mask: np.ndarray) -> float:
        return _domain_auc(space.prepare(catalogue[np.unique(items[mask])]),
                           space.prepare(catalogue[np.unique(items[~mask])]), threshold)

    permutations = run.cfg.drift.auc_null_permutations
    return Significance(
        lambda n, stop: normal_permutation_p_value(auc, statistic, shuffler, permutations, stop),
        null="user permutation test, normal tail",
    )


def quality(outcomes: pd.DataFrame | None, cfg: MonitoringConfig) -> dict[str, Any]:
    """Online quality of the current window: its click-through rate against ``quality.floor``.

    Args:
        outcomes: one row per impression of the current window (user_id, clicked), or None when it has none.
        cfg: the monitoring settings (``quality``: metric, floor, min_impressions).

    Returns:
        metric, value, floor, impressions, clicks, min_impressions, below_floor, and ``status`` (ok,
        below_floor, insufficient_data or not_applicable) with a one-line ``detail``.
    """
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
