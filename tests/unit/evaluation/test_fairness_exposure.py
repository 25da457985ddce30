"""Item exposure: popularity bins, Gini, coverage and long-tail share, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from hyperrec.evaluation.exposure import (
    exposure_counts,
    exposure_summary,
    gini,
    head_items,
    popularity_bins,
    total_variation,
)


def test_gini_is_zero_for_equal_exposure_and_maximal_when_one_item_gets_everything():
    assert gini(np.array([3.0, 3.0, 3.0, 3.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 8.0])) == pytest.approx(3 / 4)  # (n - 1) / n
    # sorted 1, 2, 3, 4: 2 * (1 + 4 + 9 + 16) / (4 * 10) - 5 / 4 = 0.25
    assert gini(np.array([4.0, 1.0, 3.0, 2.0])) == pytest.approx(0.25)
    assert gini(np.zeros(5)) == 0.0


def test_popularity_bins_put_the_most_popular_items_first_with_equal_item_counts():
    counts = np.array([5, 0, 9, 9, 1, 2])
    bins = popularity_bins(counts, 3)
    # order by count desc, ties by index: 2, 3, 0, 5, 4, 1
    assert bins.tolist() == [1, 2, 0, 0, 2, 1]
    assert head_items(np.array([1, 9, 3, 0, 0, 0, 0, 0, 0, 2])).tolist() == \
        [False, True, True, False, False, False, False, False, False, False]


def test_exposure_summary_counts_only_the_top_k_slots():
    popularity = np.array([10, 5, 3, 1, 1, 0, 0, 0, 0, 0])
    lists = [np.array([0, 1, 9]), np.array([0, 2, 8]), np.array([0, 1, 7])]
    assert exposure_counts(lists, 10, 2).tolist() == [3, 2, 1, 0, 0, 0, 0, 0, 0, 0]
    summary = exposure_summary(lists, popularity, k=2, n_bins=5)
    assert summary["coverage"] == pytest.approx(0.3)
    assert summary["long_tail_share"] == pytest.approx(1 / 6)  # head = items 0, 1; item 2 is tail
    assert [b["exposure_share"] for b in summary["bins"]] == pytest.approx([5 / 6, 1 / 6, 0, 0, 0])
    assert [b["interaction_share"] for b in summary["bins"]] == pytest.approx([0.75, 0.2, 0.05, 0, 0])
    assert summary["gini"] == pytest.approx(gini(np.array([3, 2, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)))


def test_total_variation_distance():
    assert total_variation(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert total_variation(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 1.0
    assert total_variation(np.array([0.7, 0.3]), np.array([0.5, 0.5])) == pytest.approx(0.2)
