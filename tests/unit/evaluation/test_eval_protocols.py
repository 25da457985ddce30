"""Masking, tie-breaking and negative sampling of the two protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyperrec.errors import ModelError
from hyperrec.evaluation.protocols import (
    TieBreak,
    check_scores,
    full_ranks,
    mask_items,
    sample_negatives,
    sampled_ranks,
    top_items,
)

# Item 3 wins every tie, then 1, then 0, then 2.
TIE = TieBreak(np.array([3, 1, 0, 2]))


def test_tie_break_is_a_seeded_permutation_with_its_inverse():
    tie = TieBreak.seeded(50, seed=5)
    assert sorted(tie.order.tolist()) == list(range(50))
    assert np.array_equal(tie.order, TieBreak.seeded(50, seed=5).order)
    assert not np.array_equal(tie.order, TieBreak.seeded(50, seed=6).order)
    assert np.array_equal(tie.priority[tie.order], np.arange(50))


def test_equal_scores_rank_in_tie_break_order():
    masked = mask_items(np.zeros((1, 4), dtype=np.float32), [np.array([], dtype=np.int64)])
    assert full_ranks(masked[0], np.array([3, 1, 0, 2]), TIE).tolist() == [1, 2, 3, 4]
    assert top_items(masked, TIE, 4)[0].tolist() == [3, 1, 0, 2]


def test_train_items_are_not_candidates_and_a_masked_target_is_a_miss():
    scores = np.array([[5.0, 4.0, 3.0, 2.0]], dtype=np.float32)
    masked = mask_items(scores, [np.array([0])])
    assert full_ranks(masked[0], np.array([2, 0]), TIE).tolist() == [2, math.inf]
    assert top_items(masked, TIE, 10)[0].tolist() == [1, 2, 3]


def test_unscorable_items_rank_after_every_finite_score_in_tie_order():
    scores = np.array([[-np.inf, -5.0, -np.inf, -np.inf]], dtype=np.float32)
    masked = mask_items(scores, [np.array([2])])
    assert full_ranks(masked[0], np.array([1, 3, 0]), TIE).tolist() == [1, 2, 3]
    assert top_items(masked, TIE, 10)[0].tolist() == [1, 3, 0]


def test_top_list_and_ranks_agree_on_every_item_despite_heavy_ties():
    rng = np.random.default_rng(0)
    tie = TieBreak.seeded(40, seed=1)
    scores = rng.integers(0, 4, size=(5, 40)).astype(np.float32)
    scores[0, :10] = -np.inf
    excluded = [rng.choice(40, size=6, replace=False) for _ in range(5)]
    masked = mask_items(scores, excluded)
    for row, top in enumerate(top_items(masked, tie, 40)):
        assert len(top) == 40 - 6
        assert np.array_equal(full_ranks(masked[row], top, tie), np.arange(1, len(top) + 1))


def test_check_scores_rejects_contract_breaches():
    good = np.zeros((2, 3), dtype=np.float32)
    assert check_scores(good, 2, 3, "m") is good
    for bad in (np.zeros((2, 4)), np.full((2, 3), np.nan), np.full((2, 3), np.inf), [[0.0] * 3] * 2):
        with pytest.raises(ModelError):
            check_scores(bad, 2, 3, "m")


def test_negatives_avoid_touched_items_and_are_seeded():
    touched = [np.array([0, 1, 2, 2]), np.arange(5, 50), np.arange(0, 48)]
    first = sample_negatives(touched, 50, 5, seed=3)
    assert [len(n) for n in first] == [5, 5, 2]
    for items, negatives in zip(touched, first, strict=True):
        assert not set(negatives.tolist()) & set(items.tolist())
        assert len(set(negatives.tolist())) == len(negatives)
    assert sorted(first[2].tolist()) == [48, 49]
    again = sample_negatives(touched, 50, 5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = sample_negatives(touched, 50, 5, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_negatives_are_roughly_uniform_over_untouched_items():
    counts = np.zeros(20)
    for negatives in sample_negatives([np.array([0, 1])] * 3000, 20, 3, seed=0):
        counts[negatives] += 1
    assert counts[:2].sum() == 0
    assert counts[2:].min() > 0.8 * 500 and counts[2:].max() < 1.2 * 500  # 3000 * 3 / 18 = 500 each


def test_sampled_rank_and_auc_by_hand():
    scores = mask_items(np.array([[0.5, 0.9, 0.5, 0.1]], dtype=np.float32), [np.array([], dtype=np.int64)])
    ranks, auc = sampled_ranks(scores[0], np.array([0]), np.array([1, 2, 3]), TIE)
    # item 1 scores higher; item 2 ties but comes after item 0 in TIE; item 3 is lower -> rank 2
    assert ranks.tolist() == [2]
    assert auc == pytest.approx((1 + 0.5) / 3)


def test_sampled_protocol_with_two_targets_and_a_masked_one():
    scores = mask_items(np.array([[0.2, 0.9, 0.5, 0.1]], dtype=np.float32), [np.array([1])])
    ranks, auc = sampled_ranks(scores[0], np.array([2, 1]), np.array([0, 3]), TIE)
    assert ranks.tolist() == [1, math.inf]
    assert auc == pytest.approx((1.0 + 0.0) / 2)
