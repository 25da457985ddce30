"""Drift between a reference window (the champion's training interactions) and a current window, with
Evidently.

Each check compares one distribution and yields an *effect size* computed by Evidently (normed Wasserstein
distance, Jensen-Shannon distance, a domain classifier's ROC AUC, or a relative rate change). A check reports
``drift`` only when

1. the effect size reaches its threshold (``drift.thresholds.<check>``), so that a huge sample does not turn a
   negligible difference into an alarm (a KS test on 50k rows flags almost anything), **and**
2. the difference is larger than the sampling noise of the two windows: a permutation test that reshuffles
   whole *users* between the windows (events of one user are not independent) gives a p-value <= ``alpha``;
   for embeddings, whose rows are users or distinct items, the classifier's held-out AUC is compared with its
   exact null distribution (Mann-Whitney). Small windows therefore need larger effects before they alarm.

Outputs: one HTML page (a summary table, then Evidently's widgets per group of checks), a JSON summary
(``drift_detected``, every check's score, threshold, p-value and status, both windows with time ranges and row
counts, online quality) and Evidently's own metric dump. docs/MONITORING.md explains the choices.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hyperrec.monitoring import features as F
from hyperrec.monitoring.checks import (
    CheckRun,
    EmbeddingCheck,
    ItemUnits,
    TabularChecks,
    WidgetBuilder,
    quality,
)
from hyperrec.monitoring.events import IMPRESSION
from hyperrec.monitoring.results import DriftResult
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.monitoring.verdicts import CHECKS
from hyperrec.monitoring.windows import Window

logger = logging.getLogger(__name__)

Pair = tuple[Any, Any]


@dataclass
class DriftInputs:
    """The tables and embedding samples of both windows that the checks compare (``None``: not available)."""

    events: Pair
    users: Pair
    item_embeddings: Pair
    item_units: ItemUnits | None
    profile_embeddings: Pair
    predictions: Pair
    outcomes: Pair


# The checks in the order they run (which fixes the order of random draws, hence the results at one seed),
# each with the section title of its report widgets.
EVENT_CHECKS = TabularChecks("events", "Interaction features (one row per user event)",
                             ("event_mix", "item_popularity", "rating", "dwell_seconds"), "no user events")
USER_CHECKS = TabularChecks("users", "Interaction features (one row per user)", ("user_activity",),
                            "no user events")
ITEM_EMBEDDINGS = EmbeddingCheck("item_embeddings", "no item embeddings given")
PROFILE_EMBEDDINGS = EmbeddingCheck("profile_embeddings", "no profile or item embeddings given")
PREDICTION_CHECKS = TabularChecks("predictions", "Prediction drift (one row per served recommendation)",
                                  ("prediction_score", "recommended_items"),
                                  "no predictions given for both windows")
OUTCOME_CHECKS = TabularChecks("outcomes", "Outcome drift (one row per impression)", ("ctr",),
                               "impressions missing in a window")
EMBEDDING_TITLE = "Embedding drift (Evidently domain classifier)"


def _run_checks(run: CheckRun, inputs: DriftInputs) -> list[tuple[str, list[WidgetBuilder]]]:
    """Every check, in order; returns the report sections as (title, widget builders)."""
    return [
        (EVENT_CHECKS.title, [EVENT_CHECKS(run, inputs.events)]),
        (USER_CHECKS.title, [USER_CHECKS(run, inputs.users)]),
        (EMBEDDING_TITLE, [ITEM_EMBEDDINGS(run, inputs.item_embeddings, inputs.item_units),
                           PROFILE_EMBEDDINGS(run, inputs.profile_embeddings)]),
        (PREDICTION_CHECKS.title, [PREDICTION_CHECKS(run, inputs.predictions)]),
        (OUTCOME_CHECKS.title, [OUTCOME_CHECKS(run, inputs.outcomes)]),
    ]


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

    Args:
        reference: monitoring frame (``hyperrec.monitoring.events``), interaction frame with at least user_id,
            event, timestamp, or ``Window`` (which also carries source and requested time range).
        current: the current window, in the same forms.
        config: the monitoring settings; the defaults when None.
        item_embeddings: catalogue matrix, row = item_idx: enables item and (without profiles) profile drift.
        reference_profiles: reference user profile embeddings, row = user.
        current_profiles: current user profile embeddings, row = user.
        reference_predictions: served recommendations with item_id and optionally user_id and score; when
            absent and both windows hold impressions, the impressions are the predictions.
        current_predictions: the same for the current window.
        output_dir: where the report, summary and Evidently JSON are written; None writes nothing.

    Returns:
        The verdict of every check, the windows, online quality, settings and the report sections.
    """
    started = time.perf_counter()
    cfg = config or MonitoringConfig()
    ref_window = reference if isinstance(reference, Window) else Window.of("reference", reference)
    cur_window = current if isinstance(current, Window) else Window.of("current", current)
    inputs = prepare_inputs(ref_window, cur_window, cfg, item_embeddings,
                            (reference_profiles, current_profiles),
                            (reference_predictions, current_predictions))
    run = CheckRun(cfg, np.random.default_rng(cfg.drift.seed))
    builders = _run_checks(run, inputs)  # 1. effect sizes (Evidently) of every check that has data
    significance = _decide_significance(run)  # 2. p-values of the checks over their threshold
    sections = [(title, [w for build in group for w in build()]) for title, group in builders]
    ordered = {name: run.results[name] for name in CHECKS}
    result = DriftResult(
        drift_detected=any(check.drift for check in ordered.values()),
        checks=ordered,
        windows={"reference": ref_window.describe(), "current": cur_window.describe()},
        quality=quality(inputs.outcomes[1], cfg),
        settings={**significance, "permutation_early_stop": cfg.drift.permutation_early_stop,
                  "min_users": cfg.drift.min_users, "min_rows": cfg.drift.min_rows, "seed": cfg.drift.seed},
        generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        wall_seconds=time.perf_counter() - started,
        evidently=run.evidently,
        sections=sections,
    )
    logger.info("drift check: drift_detected=%s drifted=%s (%d vs %d rows) in %.1f s", result.drift_detected,
                result.drifted_checks, len(ref_window.frame), len(cur_window.frame), result.wall_seconds)
    if output_dir is not None:
        result.write(output_dir)
    return result


def _decide_significance(run: CheckRun) -> dict[str, Any]:
    """Drift = over threshold AND p-value <= alpha / (checks that ran) (Bonferroni); returns those
    settings."""
    settings = run.cfg.drift
    scored = [c for c in run.results.values() if c.score is not None]
    level = settings.alpha / max(len(scored), 1)
    max_permutations = math.ceil(max(len(scored), 1) / settings.alpha) - 1
    for check in scored:
        check.alpha_per_check = level
    for name, significance in run.pending.items():
        check = run.results[name]
        check.p_value, check.permutations = significance(max_permutations, settings.permutation_early_stop)
        if check.p_value <= level:
            check.status = "drift"
            check.detail = "above threshold and beyond sampling noise"
        else:
            check.status = "ok"
            check.detail = (
                f"above threshold but within the sampling noise of these windows ({significance.null})"
            )
    return {"alpha": settings.alpha, "checks_run": len(scored), "alpha_per_check": level,
            "max_permutations": max_permutations}


def prepare_inputs(
    ref_window: Window, cur_window: Window, cfg: MonitoringConfig, item_embeddings: np.ndarray | None,
    profiles: Pair, predictions: Pair,
) -> DriftInputs:
    """Features of both windows: per-event and per-user tables, embedding samples, predictions, outcomes.

    Args:
        ref_window: the reference window.
        cur_window: the current window.
        cfg: the monitoring settings.
        item_embeddings: the catalogue embedding matrix (row = item_idx), or None.
        profiles: the (reference, current) user profile embeddings; used only when both are given.
        predictions: the (reference, current) served recommendations, either may be None.

    Returns:
        Each input as a (reference, current) pair; a pair of None where the data is missing.
    """
    ref_events, cur_events = F.behaviour_events(ref_window.frame), F.behaviour_events(cur_window.frame)
    counts = F.item_reference_counts(ref_events)
    items: Pair = (None, None)
    units: ItemUnits | None = None
    profile_pair: Pair = (None, None)
    if item_embeddings is not None:
        item_embeddings = np.asarray(item_embeddings, dtype="float64")
        items = (F.consumed_item_embeddings(ref_events, item_embeddings),
                 F.consumed_item_embeddings(cur_events, item_embeddings))
        profile_pair = (F.mean_profile_embeddings(ref_events, item_embeddings),
                        F.mean_profile_embeddings(cur_events, item_embeddings))
        units = (*F.user_item_pairs(ref_events, len(item_embeddings)),
                 *F.user_item_pairs(cur_events, len(item_embeddings)), item_embeddings)
    if profiles[0] is not None and profiles[1] is not None:
        profile_pair = (np.asarray(profiles[0]), np.asarray(profiles[1]))
    return DriftInputs(
        events=(F.event_features(ref_events, counts, is_reference=True),
                F.event_features(cur_events, counts, is_reference=False)),
        users=(F.user_features(ref_events), F.user_features(cur_events)),
        item_embeddings=items,
        item_units=units,
        profile_embeddings=profile_pair,
        predictions=_prediction_tables(ref_window.frame, cur_window.frame, predictions, cfg),
        outcomes=tuple(F.impression_outcomes(w.frame) if _has_impressions(w.frame) else None
                       for w in (ref_window, cur_window)),
    )


def _prediction_tables(ref_frame: pd.DataFrame, cur_frame: pd.DataFrame, predictions: Pair,
                       cfg: MonitoringConfig) -> Pair:
    """Served recommendations of both windows: the given ones, else the impressions of the feedback log."""
    ref_pred, cur_pred = predictions
    if ref_pred is None and cur_pred is None and _has_impressions(ref_frame) and _has_impressions(cur_frame):
        ref_pred, cur_pred = F.predictions_from_feedback(ref_frame), F.predictions_from_feedback(cur_frame)
    if ref_pred is None or cur_pred is None:
        return None, None
    return F.prediction_features(ref_pred, cur_pred, cfg.drift.top_recommended_items)


def _has_impressions(frame: pd.DataFrame) -> bool:
    return bool((frame["event"] == IMPRESSION).any())
