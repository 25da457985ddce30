"""Ranking rules on tiny hand-computed score vectors."""

import numpy as np
import pytest

from hyperrec.online.ranking import (
    FIRST_PREFIX,
    blend_popularity,
    eligible_mask,
    popularity_scores,
    top_k_diverse,
)


def test_eligible_excludes_seen_keeps_candidates_and_drops_unscorable_items():
    scores = np.array([1.0, 2.0, -np.inf, 4.0, 5.0])
    mask = eligible_mask(5, scores, exclude=np.array([4]), candidates=np.array([1, 2, 3, 4]))
    assert mask.tolist() == [False, True, False, True, False]


def test_top_k_orders_by_score_with_ties_broken_by_item_index():
    scores = np.array([3.0, 5.0, 5.0, 1.0])
    ranked = top_k_diverse(scores, np.ones(4, dtype=bool), 3)
    assert ranked.items.tolist() == [1, 2, 0]
    assert ranked.scores.tolist() == [5.0, 5.0, 3.0]


def test_diversity_cap_limits_items_sharing_a_category_and_is_soft_when_items_run_out():
    scores = np.array([9.0, 8.0, 7.0, 6.0, 5.0])
    codes = [np.array([0]), np.array([0]), np.array([0, 1]), np.array([1]), np.array([2])]
    ranked = top_k_diverse(scores, np.ones(5, dtype=bool), 3, codes, max_per_category=1)
    assert ranked.items.tolist() == [0, 3, 4]  # 1 and 2 share category 0 with item 0
    ranked = top_k_diverse(scores, np.ones(5, dtype=bool), 5, codes, max_per_category=1)
    assert ranked.items.tolist() == [0, 1, 2, 3, 4]  # not enough diverse items: capped ones fill in, by score


def test_popularity_weight_zero_keeps_model_order_and_one_gives_popularity_order():
    scores = np.array([3.0, 2.0, 1.0])
    popularity = np.array([0.1, 0.2, 0.7])
    mask = np.ones(3, dtype=bool)
    assert np.argsort(-blend_popularity(scores, popularity, 0.0, mask)).tolist() == [0, 1, 2]
    assert np.argsort(-blend_popularity(scores, popularity, 1.0, mask)).tolist() == [2, 1, 0]
    half = blend_popularity(scores, popularity, 0.5, mask)
    assert half[1] == pytest.approx(0.5 * 0.5 + 0.5 * ((np.log1p(0.2e6) - np.log1p(0.1e6))
                                                        / (np.log1p(0.7e6) - np.log1p(0.1e6))))


def test_segment_popularity_wins_over_global_popularity_when_the_segment_is_known():
    popularity = np.array([0.5, 0.3, 0.2])
    by_segment = {1: np.array([0.0, 0.0, 4.0])}
    scores, source = popularity_scores(popularity, by_segment, 1)
    assert source == "segment_popular" and np.argsort(-scores).tolist() == [2, 0, 1]
    scores, source = popularity_scores(popularity, by_segment, None)
    assert source == "popular" and np.argsort(-scores).tolist() == [0, 1, 2]
    assert popularity_scores(popularity, by_segment, 7)[1] == "popular"


def _greedy_by_definition(scores, mask, k, codes, cap):
    """The ranking rule spelled out: score order (ties by index), greedy under the cap, capped items fill
    up."""
    order = sorted(np.flatnonzero(mask).tolist(), key=lambda i: (-scores[i], i))
    if cap is None:
        return order[:k]
    counts, chosen, skipped = {}, [], []
    for i in order:
        if len(chosen) == k:
            break
        if all(counts.get(c, 0) < cap for c in codes[i]):
            chosen.append(i)
            for c in codes[i]:
                counts[c] = counts.get(c, 0) + 1
        else:
            skipped.append(i)
    return sorted(chosen + skipped[: k - len(chosen)], key=lambda i: (-scores[i], i))


@pytest.mark.parametrize("seed", range(40))
def test_top_k_diverse_follows_the_rule_on_random_lists_with_ties(seed):
    """Lists up to 8x the first prefix the pass walks, so a pass under a tight cap walks longer ones too."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8 * FIRST_PREFIX))
    scores = rng.integers(0, 6, size=n).astype(np.float64)  # few values: many ties
    mask = rng.random(n) < 0.8
    # Few items without a category: under a tight cap they are what a long walk finds beyond the first prefix.
    sizes = np.where(rng.random(n) < 0.02, 0, rng.integers(1, 3, size=n))
    codes = [tuple(rng.choice(5, size=int(size), replace=False).tolist()) for size in sizes]
    for k in (1, 3, 10, 50):
        for cap in (None, 1, 2, 3):
            if not mask.any():
                continue
            ranked = top_k_diverse(scores, mask, k, codes, cap)
            expected = _greedy_by_definition(scores, mask, k, codes, cap)
            assert ranked.items.tolist() == expected, (seed, k, cap)
            assert ranked.scores.tolist() == scores[expected].tolist()
