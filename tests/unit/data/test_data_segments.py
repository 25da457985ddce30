"""Behavioural segments: features per user, k by silhouette, seeded."""

import numpy as np
import pandas as pd
import pytest

from hyperrec.data.segments import segment_users, user_features

ITEMS = pd.DataFrame({"item_idx": [0, 1, 2], "categories": [["Drama"], ["Comedy"], ["Drama", "Comedy"]]})


def test_features_count_events_days_and_category_entropy():
    events = pd.DataFrame({
        "user_id": ["a", "a", "a", "b"],
        "item_idx": [0, 1, -1, 0],
        "label": [True, True, False, True],
        "value": [4.0, 2.0, np.nan, np.nan],
        "timestamp": [0, 86_400, 86_401, 5],
    })
    features = user_features(events, ITEMS)
    assert features.loc["a", "events"] == 3 and features.loc["a", "positives"] == 2
    assert features.loc["a", "mean_value"] == 3.0 and np.isnan(features.loc["b", "mean_value"])
    assert features.loc["a", "active_days"] == 2
    assert features.loc["a", "category_entropy"] == pytest.approx(np.log(2))
    assert features.loc["b", "category_entropy"] == 0.0
    assert features.loc["a", "mean_log_popularity"] == pytest.approx((np.log1p(2) + np.log1p(1)) / 2)


def _two_groups() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    light = rng.normal([5, 3, 3, 2, 0.2, 1], 0.3, size=(30, 6))
    heavy = rng.normal([500, 400, 4, 60, 2.0, 4], [20, 20, 0.3, 3, 0.1, 0.2], size=(20, 6))
    columns = ["events", "positives", "mean_value", "active_days", "category_entropy", "mean_log_popularity"]
    return pd.DataFrame(np.vstack([light, heavy]).clip(0), columns=columns,
                        index=[f"u{i:02d}" for i in range(50)])


def test_k_is_chosen_by_silhouette_and_segments_are_numbered_by_size():
    result = segment_users(_two_groups(), k_min=2, k_max=6, seed=0)
    assert result.k == 2
    assert result.silhouette[2] == max(result.silhouette.values())
    assert set(result.silhouette) == {2, 3, 4, 5, 6}
    assert result.sizes() == {0: 30, 1: 20}
    segments = result.assignments.set_index("user_id")["segment"]
    assert (segments.iloc[:30] == 0).all() and (segments.iloc[30:] == 1).all()


def test_segmentation_is_seeded():
    first = segment_users(_two_groups(), 2, 4, seed=5).assignments
    pd.testing.assert_frame_equal(first, segment_users(_two_groups(), 2, 4, seed=5).assignments)


def test_too_few_users_share_one_segment():
    result = segment_users(_two_groups().iloc[:2], k_min=2, k_max=8, seed=0)
    assert result.k == 1 and result.silhouette == {}
    assert result.assignments["segment"].tolist() == [0, 0]
