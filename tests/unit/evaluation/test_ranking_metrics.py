"""Each ranking metric against values computed by hand."""

from __future__ import annotations

import math

import pytest

from hyperrec.evaluation import metrics

INF = math.inf
LOG3 = math.log2(3)


@pytest.mark.parametrize(
    ("ranks", "n_relevant", "k", "hr", "ndcg", "ap", "recall"),
    [
        ([1], 1, 10, 1.0, 1.0, 1.0, 1.0),
        ([3], 1, 10, 1.0, 0.5, 1 / 3, 1.0),  # 1/log2(4)
        ([3], 1, 2, 0.0, 0.0, 0.0, 0.0),
        ([11], 1, 10, 0.0, 0.0, 0.0, 0.0),
        ([INF], 1, 10, 0.0, 0.0, 0.0, 0.0),
        # two of three relevant found at 1 and 3: DCG 1 + 1/2, IDCG 1 + 1/log2(3) + 1/2; AP (1 + 2/3) / 3
        ([1, 3], 3, 10, 1.0, 1.5 / (1.5 + 1 / LOG3), 5 / 9, 2 / 3),
        # only rank 2 within k=2: DCG 1/log2(3), IDCG 1 + 1/log2(3); AP (1/2) / min(2, 2)
        ([5, 2], 2, 2, 1.0, (1 / LOG3) / (1 + 1 / LOG3), 0.25, 0.5),
        # more relevant items than K: a perfect top-2 scores 1 on NDCG and MAP, recall stays 2/5
        ([2, 1], 5, 2, 1.0, 1.0, 1.0, 0.4),
    ],
)
def test_cutoff_metrics_match_hand_computed_values(ranks, n_relevant, k, hr, ndcg, ap, recall):
    assert metrics.hit_rate(ranks, k) == pytest.approx(hr, abs=1e-12)
    assert metrics.ndcg(ranks, n_relevant, k) == pytest.approx(ndcg, abs=1e-12)
    assert metrics.average_precision(ranks, n_relevant, k) == pytest.approx(ap, abs=1e-12)
    assert metrics.recall(ranks, n_relevant, k) == pytest.approx(recall, abs=1e-12)


@pytest.mark.parametrize(
    ("ranks", "expected"), [([1], 1.0), ([4], 0.25), ([7, 3], 1 / 3), ([INF], 0.0), ([], 0.0)])
def test_reciprocal_rank_uses_the_best_ranked_relevant_item(ranks, expected):
    assert metrics.reciprocal_rank(ranks) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("n_lower", "n_tied", "n_negatives", "expected"),
    [(10, 0, 10, 1.0), (0, 0, 10, 0.0), (3, 2, 10, 0.4), (0, 4, 4, 0.5), (99, 1, 100, 0.995)],
)
def test_auc_counts_a_tie_as_half(n_lower, n_tied, n_negatives, expected):
    assert metrics.auc(n_lower, n_tied, n_negatives) == pytest.approx(expected)


def test_cutoff_metrics_reports_every_metric_at_every_k_plus_mrr():
    result = metrics.cutoff_metrics([3], 1, [1, 5])
    assert result == pytest.approx({
        "hr@1": 0.0, "ndcg@1": 0.0, "map@1": 0.0, "recall@1": 0.0,
        "hr@5": 1.0, "ndcg@5": 0.5, "map@5": 1 / 3, "recall@5": 1.0,
        "mrr": 1 / 3,
    })


def test_standard_error_is_sample_std_over_sqrt_n():
    assert metrics.standard_error([0.0, 1.0]) == pytest.approx(0.5)  # std 1/sqrt(2), / sqrt(2)
    assert metrics.standard_error([0.3]) == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.hit_rate([0], 10),
        lambda: metrics.hit_rate([math.nan], 10),
        lambda: metrics.hit_rate([1], 0),
        lambda: metrics.ndcg([1, 2], 1, 10),
        lambda: metrics.recall([1], 0, 10),
        lambda: metrics.hit_rate([[1]], 10),
        lambda: metrics.auc(5, 6, 10),
        lambda: metrics.auc(0, 0, 0),
        lambda: metrics.auc(-1, 0, 3),
    ],
)
def test_invalid_inputs_are_rejected(call):
    with pytest.raises(ValueError):
        call()
