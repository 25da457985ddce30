"""run_drift_check on synthetic windows: no false alarm, one shifted feature flags exactly that check."""

import logging

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests import get_stattest
from evidently.legacy.core import ColumnType
from monitoring_helpers import feedback_records, split_by_user, synthetic_events

from hyperrec.monitoring.drift import run_drift_check
from hyperrec.monitoring.events import feedback_records_to_frame
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.monitoring.significance import RELATIVE_RATE_CHANGE, fast_statistic

INTERACTION_CHECKS = ["event_mix", "item_popularity", "rating", "dwell_seconds", "user_activity"]


@pytest.fixture(scope="module")
def reference():
    return synthetic_events(300, seed=2)


def test_two_random_halves_of_one_period_do_not_alarm():
    first, second = split_by_user(synthetic_events(600, seed=1))
    result = run_drift_check(first, second)
    assert not result.drift_detected
    assert {name: result.checks[name].status for name in INTERACTION_CHECKS} == dict.fromkeys(
        INTERACTION_CHECKS, "ok")
    assert result.windows["reference"]["users"] + result.windows["current"]["users"] == 600


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ({"dwell_scale": 1.5}, "dwell_seconds"),
        ({"rating_shift": 0.5}, "rating"),
        ({"event_mix": (0.5, 0.2, 0.3)}, "event_mix"),
    ],
)
def test_a_synthetic_shift_of_one_feature_flags_exactly_that_feature(reference, shift, expected):
    current = synthetic_events(300, seed=3, **shift)
    result = run_drift_check(reference, current)
    assert result.drift_detected
    assert result.drifted_checks == [expected]
    check = result.checks[expected]
    assert check.score >= check.threshold and check.p_value <= check.alpha_per_check


def test_the_same_generator_with_other_users_does_not_alarm(reference):
    assert run_drift_check(reference, synthetic_events(300, seed=3)).drifted_checks == []


def test_a_large_effect_on_few_users_is_reported_as_noise_not_drift():
    """Tiny windows: scores swing above the thresholds by chance; the permutation test keeps them quiet."""
    cfg = MonitoringConfig.model_validate({"drift": {"min_users": 5, "min_rows": 20}})
    rng = np.random.default_rng(0)
    rows = []
    for window, users in (("a", range(12)), ("b", range(12, 24))):
        for u in users:
            level = rng.normal(3, 1.2)  # strong per-user effect, no window effect
            for k in range(15):
                rows.append({"window": window, "user_id": f"u{u}", "event": "rating", "item_id": f"i{k}",
                             "timestamp": 1_000 + k, "value": float(level + rng.normal(0, 0.2))})
    frame = pd.DataFrame(rows)
    result = run_drift_check(frame[frame.window == "a"], frame[frame.window == "b"], cfg)
    rating = result.checks["rating"]
    assert rating.score >= rating.threshold  # the effect size alone would alarm
    assert rating.status == "ok" and rating.p_value > rating.alpha_per_check
    assert "sampling noise" in rating.detail


def test_missing_inputs_and_small_windows_are_reported_not_raised(reference):
    tiny = synthetic_events(5, seed=9)
    result = run_drift_check(reference, tiny)
    assert not result.drift_detected
    assert result.checks["rating"].status == "insufficient_data"
    assert result.checks["item_embeddings"].status == "not_applicable"
    assert result.checks["ctr"].status == "not_applicable"
    assert result.quality["status"] == "not_applicable"
    disabled = MonitoringConfig.model_validate({"drift": {"disabled_checks": ["rating"]}})
    assert run_drift_check(reference, reference, disabled).checks["rating"].status == "disabled"


def test_embedding_drift_of_profiles_and_items():
    rng = np.random.default_rng(0)
    same = run_drift_check(synthetic_events(100, seed=4), synthetic_events(100, seed=5),
                           reference_profiles=rng.normal(size=(400, 16)),
                           current_profiles=rng.normal(size=(400, 16)))
    assert same.checks["profile_embeddings"].status == "ok"
    shifted = run_drift_check(synthetic_events(100, seed=4), synthetic_events(100, seed=5),
                              reference_profiles=rng.normal(size=(400, 16)),
                              current_profiles=rng.normal(0.4, 1, size=(400, 16)))
    assert shifted.checks["profile_embeddings"].status == "drift"
    assert shifted.checks["profile_embeddings"].score > 0.6

    # items: the current users consume the second half of the catalogue, whose embeddings differ
    catalogue = np.vstack([rng.normal(0, 1, size=(200, 8)), rng.normal(1.0, 1, size=(200, 8))])
    reference = synthetic_events(200, seed=6, n_items=200)
    current = synthetic_events(200, seed=7, n_items=200)
    current["item_idx"] += 200
    current["item_id"] = "i" + current["item_idx"].astype(str)
    result = run_drift_check(reference, current, item_embeddings=catalogue)
    assert result.checks["item_embeddings"].status == "drift"
    assert result.checks["profile_embeddings"].status == "drift"  # mean item embedding per user
    assert run_drift_check(reference, synthetic_events(200, seed=8, n_items=200),
                           item_embeddings=catalogue).checks["item_embeddings"].status == "ok"


def _feedback(**kwargs):
    frame, _ = feedback_records_to_frame(feedback_records(**kwargs))
    return frame


def test_prediction_and_outcome_drift_from_the_feedback_log():
    reference = _feedback(seed=1, ctr=0.10)
    stable = run_drift_check(reference, _feedback(seed=2, ctr=0.10))
    for name in ("prediction_score", "recommended_items", "ctr"):
        assert stable.checks[name].status == "ok", name
    assert stable.quality["status"] == "ok" and not stable.quality["below_floor"]

    dropped = run_drift_check(reference, _feedback(seed=2, ctr=0.05, score_shift=0.2))
    assert set(dropped.drifted_checks) >= {"ctr", "prediction_score"}
    assert "recommended_items" not in dropped.drifted_checks
    ctr = dropped.checks["ctr"]
    assert ctr.extra["current_ctr"] < ctr.extra["reference_ctr"]

    cfg = MonitoringConfig.model_validate({"quality": {"floor": 0.08}})
    low = run_drift_check(reference, _feedback(seed=2, ctr=0.05), cfg)
    assert low.quality["status"] == "below_floor" and low.quality["below_floor"]
    assert low.quality["value"] == pytest.approx(0.05, abs=0.015)


def test_explicit_predictions_compare_recommended_items():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"user_id": [f"u{i // 10}" for i in range(3000)],
                        "item_id": [f"i{k}" for k in rng.integers(0, 30, 3000)]})
    cur = pd.DataFrame({"user_id": [f"v{i // 10}" for i in range(3000)],
                        "item_id": [f"i{k}" for k in rng.integers(15, 45, 3000)]})
    result = run_drift_check(synthetic_events(50, seed=1), synthetic_events(50, seed=2),
                             reference_predictions=ref, current_predictions=cur)
    assert result.checks["recommended_items"].status == "drift"
    assert result.checks["prediction_score"].status == "not_applicable"  # no score column


@pytest.mark.parametrize(
    ("method", "kind", "values"),
    [
        ("wasserstein", ColumnType.Numerical, np.random.default_rng(1).lognormal(0, 1, 900)),
        ("wasserstein", ColumnType.Numerical, np.random.default_rng(2).integers(1, 6, 900).astype(float)),
        ("jensenshannon", ColumnType.Categorical, np.random.default_rng(3).choice(list("abcde"), 900)),
        (
            RELATIVE_RATE_CHANGE,
            ColumnType.Numerical,
            (np.random.default_rng(4).random(900) < 0.1).astype(float),
        ),
    ],
)
def test_permutation_statistics_equal_evidently(method, kind, values):
    mask = np.random.default_rng(5).random(len(values)) < 0.4
    ref, cur = pd.Series(values[mask]), pd.Series(values[~mask])
    expected = get_stattest(ref, cur, kind, method)(ref, cur, kind, 0.1).drift_score
    assert fast_statistic(method, kind == ColumnType.Categorical, values)(mask) == pytest.approx(
        expected, rel=1e-9
    )


def test_logs_carry_no_user_ids(reference, caplog):
    with caplog.at_level(logging.DEBUG, logger="hyperrec"):
        run_drift_check(reference, synthetic_events(300, seed=3, dwell_scale=1.5))
    assert caplog.records and not any("u1" in r.getMessage() for r in caplog.records)
