"""Policies over the ranker's top N: cold start equals the plain ranking, propensities, budget, learning."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from hyperrec.online.bandits.context import BanditContext, Candidates
from hyperrec.online.bandits.policies import SlateRequest, item_key, make_policy, rank_key
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.slates import (
    capped_slates,
    epsilon_matrix,
    outsider_cap,
    sample_uniform_capped,
    uniform_capped_matrix,
)
from hyperrec.online.bandits.state import Stat, StateSnapshot

N, K = 8, 3
POLICIES = ("greedy", "epsilon_greedy", "ucb1", "thompson", "linucb")


def candidates(n: int = N) -> Candidates:
    return Candidates(tuple(f"m{j}" for j in range(n)), np.linspace(2.0, 1.0, n), np.arange(n, dtype=float))


def request(k: int = K, budget: float = 1.0, n: int = N) -> SlateRequest:
    return SlateRequest(
        candidates(n), BanditContext(segment=1, history_length=12), k, outsider_cap(k, budget, n)
    )


EMPTY = StateSnapshot({}, {}, None)


def learned(clicked_item: str, clicks: float, shown: float = 50.0) -> StateSnapshot:
    """Every rank and item seen 50 times with 2 clicks, but one item: ``shown`` times with ``clicks``."""
    stats = {rank_key(j): Stat(50.0, 2.0) for j in range(N)}
    stats.update({item_key(f"m{j}"): Stat(50.0, 2.0) for j in range(N)})
    stats["total"] = Stat(50.0 * N, 2.0 * N)
    stats[item_key(clicked_item)] = Stat(shown, clicks)
    return StateSnapshot(stats, {}, 0.0)


@pytest.mark.parametrize("name", ["greedy", "epsilon_greedy", "ucb1", "linucb"])
def test_without_feedback_a_policy_shows_the_plain_ranking(name: str) -> None:
    settings = BanditConfig(epsilon=0.0)
    choice = make_policy(name, settings).choose(request(), EMPTY, np.random.default_rng(0))
    assert choice.slate.tolist() == [0, 1, 2]
    assert choice.propensities.tolist() == [1.0, 1.0, 1.0]


def test_evidence_moves_a_clicked_item_up_for_every_exploiting_policy() -> None:
    snapshot = learned("m6", clicks=30.0)
    for name in ("epsilon_greedy", "ucb1", "thompson"):
        choice = make_policy(name, BanditConfig(epsilon=0.0)).choose(
            request(), snapshot, np.random.default_rng(3)
        )
        assert choice.slate[0] == 6, name


def test_an_item_shown_often_without_clicks_moves_down() -> None:
    snapshot = learned("m0", clicks=0.0, shown=200.0)
    choice = make_policy("epsilon_greedy", BanditConfig(epsilon=0.0)).choose(request(), snapshot,
                                                                             np.random.default_rng(0))
    assert 0 not in choice.slate.tolist()
    assert choice.slate.tolist() == [1, 2, 3]


def test_ucb1_prefers_the_less_shown_of_two_equal_items() -> None:
    stats = {item_key("m0"): Stat(400.0, 20.0), "total": Stat(400.0, 20.0)}
    choice = make_policy("ucb1", BanditConfig(ucb_c=1.0)).choose(request(), StateSnapshot(stats, {}, 0.0),
                                                                  np.random.default_rng(0))
    assert 0 not in choice.slate.tolist()


def test_same_seed_same_slates() -> None:
    for name in POLICIES:
        policy = make_policy(name, BanditConfig(epsilon=0.5))
        first = [
            policy.choose(request(), EMPTY, rng).slate.tolist() for rng in [np.random.default_rng(11)] * 5
        ]
        second = [
            policy.choose(request(), EMPTY, rng).slate.tolist() for rng in [np.random.default_rng(11)] * 5
        ]
        assert first == second, name


# ------------------------------------------------------------------------------------------------ budget


def test_the_budget_caps_the_items_outside_the_plain_top_k() -> None:
    orders = np.array([[7, 6, 5, 0, 1, 2, 3, 4], [0, 7, 1, 6, 2, 5, 3, 4]])
    assert capped_slates(orders, 3, 1).tolist() == [[7, 0, 1], [0, 7, 1]]
    assert capped_slates(orders, 3, 0).tolist() == [[0, 1, 2], [0, 1, 2]]
    assert capped_slates(orders, 3, 3).tolist() == [[7, 6, 5], [0, 7, 1]]


@pytest.mark.parametrize("name", ["epsilon_greedy", "thompson", "ucb1", "linucb"])
def test_no_policy_exceeds_the_budget(name: str) -> None:
    settings = BanditConfig(epsilon=1.0, ucb_c=5.0, linucb_alpha=5.0, budget=0.34)
    policy = make_policy(name, settings)
    rng = np.random.default_rng(5)
    req = request(budget=settings.budget)
    assert req.cap == 1
    snapshot = learned("m7", clicks=40.0)
    for _ in range(200):
        slate = policy.choose(req, snapshot, rng).slate
        assert (slate >= K).sum() <= 1


def test_budget_zero_means_the_plain_top_k() -> None:
    req = request(budget=0.0)
    for name in POLICIES:
        choice = make_policy(name, BanditConfig(epsilon=1.0)).choose(req, learned("m7", 40.0),
                                                                     np.random.default_rng(1))
        assert sorted(choice.slate.tolist()) == [0, 1, 2], name


# ------------------------------------------------------------------------------------------------
# propensities


def _brute_force_uniform(n: int, k: int, cap: int) -> np.ndarray:
    slates = [s for s in permutations(range(n), k) if sum(j >= k for j in s) <= cap]
    matrix = np.zeros((n, k))
    for slate in slates:
        matrix[list(slate), range(k)] += 1.0 / len(slates)
    return matrix


@pytest.mark.parametrize(("n", "k", "cap"), [(6, 3, 1), (6, 3, 3), (5, 2, 2), (7, 3, 0)])
def test_uniform_capped_propensities_match_enumeration(n: int, k: int, cap: int) -> None:
    np.testing.assert_allclose(uniform_capped_matrix(n, k, cap), _brute_force_uniform(n, k, cap), atol=1e-12)


def test_uniform_capped_sampling_matches_its_propensities() -> None:
    rng = np.random.default_rng(0)
    draws = 10_000
    counts = np.zeros((6, 3))
    for _ in range(draws):
        counts[sample_uniform_capped(6, 3, 1, rng), range(3)] += 1
    np.testing.assert_allclose(counts / draws, uniform_capped_matrix(6, 3, 1), atol=0.015)


def test_epsilon_greedy_propensities_are_exact_and_each_position_sums_to_one() -> None:
    settings = BanditConfig(epsilon=0.3, budget=0.67)
    policy = make_policy("epsilon_greedy", settings)
    req = request(budget=settings.budget)
    snapshot = learned("m5", clicks=30.0)
    rng = np.random.default_rng(2)
    draws = 8000
    counts = np.zeros((N, K))
    reported = {}
    for _ in range(draws):
        choice = policy.choose(req, snapshot, rng)
        counts[choice.slate, range(K)] += 1
        for pos, (j, p) in enumerate(zip(choice.slate.tolist(), choice.propensities.tolist())):
            reported[(j, pos)] = p
    exploit = np.array([5, 0, 1])
    matrix = epsilon_matrix(exploit, N, K, 0.3, req.cap)
    np.testing.assert_allclose(matrix.sum(axis=0), 1.0)
    np.testing.assert_allclose(counts / draws, matrix, atol=0.015)
    for (j, pos), p in reported.items():
        assert p == pytest.approx(matrix[j, pos])


def test_thompson_monte_carlo_propensities_agree_with_the_slate_frequencies() -> None:
    policy = make_policy("thompson", BanditConfig(propensity_samples=400, budget=1.0))
    snapshot = learned("m4", clicks=8.0, shown=60.0)
    rng = np.random.default_rng(4)
    draws = 1500
    counts = np.zeros((N, K))
    estimates: dict[tuple[int, int], list[float]] = {}
    for _ in range(draws):
        choice = policy.choose(request(), snapshot, rng)
        assert choice.method == "monte_carlo"
        assert np.all(choice.propensities >= 1 / 400)
        counts[choice.slate, range(K)] += 1
        for pos, (j, p) in enumerate(zip(choice.slate.tolist(), choice.propensities.tolist())):
            estimates.setdefault((j, pos), []).append(p)
    for (j, pos), values in estimates.items():
        if counts[j, pos] >= 100:
            assert np.mean(values) == pytest.approx(counts[j, pos] / draws, abs=0.04)


def test_random_reference_propensities_are_one_over_n() -> None:
    choice = make_policy("random", BanditConfig()).choose(request(), EMPTY, np.random.default_rng(0))
    np.testing.assert_allclose(choice.propensities, 1.0 / N)


def test_unknown_policy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown bandit policy 'softmax'"):
        make_policy("softmax", BanditConfig())
