"""BanditReranker: learning from impressions, staleness and store failures fall back to the plain ranking."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONTEXT, Clock, make_candidates, outcomes

from hyperrec.config import load_config
from hyperrec.errors import ConfigError
from hyperrec.online.bandits.context import BanditContext, candidate_features, feature_dim, linucb_features
from hyperrec.online.bandits.feedback import Impression, ServedItem, reward_of
from hyperrec.online.bandits.policies import LINUCB_A, LINUCB_B, item_key
from hyperrec.online.bandits.reranker import BanditReranker
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.state import MemoryStore, StoreUnavailable

PLAIN = ("m0", "m1", "m2", "m3", "m4")


def settings(**changes) -> BanditConfig:
    base = {"enabled": True, "policy": "epsilon_greedy", "epsilon": 0.0, "top_n": 10, "budget": 0.4,
            "staleness_s": 600.0, "seed": 1}
    return BanditConfig(**{**base, **changes})


class BrokenStore(MemoryStore):
    """A store whose backend is gone: every call fails as a dead Redis does."""

    def read(self, namespace, keys, arrays):
        raise StoreUnavailable("connection refused")

    def add(self, namespace, delta):
        raise StoreUnavailable("connection refused")

    def touch(self, namespace, now):
        raise StoreUnavailable("connection refused")


def test_clicks_on_a_lower_ranked_item_bring_it_into_the_slate() -> None:
    clock = Clock()
    reranker = BanditReranker(settings(), MemoryStore(), clock=clock)
    assert reranker.rerank(make_candidates(), CONTEXT, 5).items == PLAIN
    served = reranker.rerank(make_candidates(), CONTEXT, 5)
    impressions = []
    for i in range(40):  # m8 is shown (e.g. by an exploring replica) and clicked most of the time
        impressions += outcomes(served, f"r{i}", clicked=set())
        impressions.append(
            Impression(
                request_id=f"r{i}",
                policy="epsilon_greedy",
                item_id="m8",
                position=4,
                ranker_rank=8,
                propensity=0.1,
                segment=2,
                history_length=25,
                item_features=tuple(candidate_features(make_candidates())[8]),
                clicked=i % 4 != 0,
            )
        )
    assert reranker.update(impressions)
    slate = reranker.rerank(make_candidates(), CONTEXT, 5)
    assert slate.items[0] == "m8" and not slate.degraded
    assert slate.propensity_method == "exact"
    assert sum(item not in PLAIN for item in slate.items) <= 2  # budget 0.4 of 5 slots


def test_greedy_and_disabled_serve_the_plain_ranking_without_reading_state() -> None:
    for config in (settings(policy="greedy"), settings(enabled=False)):
        slate = BanditReranker(config, BrokenStore()).rerank(make_candidates(), CONTEXT, 5)
        assert slate.items == PLAIN and slate.policy == "greedy" and not slate.degraded


def test_stale_state_falls_back_to_the_plain_ranking_until_feedback_arrives() -> None:
    clock = Clock()
    store = MemoryStore()
    reranker = BanditReranker(settings(policy="thompson"), store, clock=clock)
    assert not reranker.rerank(make_candidates(), CONTEXT, 5).degraded
    clock.now += 601.0
    stale = reranker.rerank(make_candidates(), CONTEXT, 5)
    assert stale.degraded and stale.reason == "stale_state" and stale.items == PLAIN
    assert stale.propensities == (1.0,) * 5
    assert reranker.update(outcomes(stale, "r1", clicked={"m1"}))
    assert not reranker.rerank(make_candidates(), CONTEXT, 5).degraded


def test_staleness_none_never_goes_stale() -> None:
    clock = Clock()
    reranker = BanditReranker(settings(staleness_s=None), MemoryStore(), clock=clock)
    clock.now += 10**9
    assert not reranker.rerank(make_candidates(), CONTEXT, 5).degraded


def test_a_failing_store_means_the_plain_ranking_and_no_error() -> None:
    clock = Clock()
    reranker = BanditReranker(settings(unavailable_backoff_s=5.0), BrokenStore(), clock=clock)
    for i in range(20):
        slate = reranker.rerank(make_candidates(), CONTEXT, 5)
        assert slate.items == PLAIN and slate.degraded and slate.reason == "state_unavailable"
        assert reranker.update(outcomes(slate, f"r{i}", clicked={"m0"})) is False
        clock.now += 1.0


def test_after_a_failure_the_store_is_left_alone_for_the_backoff() -> None:
    clock = Clock()
    store = MemoryStore()
    reranker = BanditReranker(settings(unavailable_backoff_s=5.0), store, clock=clock)
    calls = []
    original = store.read

    def failing_read(*args):
        calls.append(clock.now)
        raise StoreUnavailable("timeout")

    store.read = failing_read
    reranker.rerank(make_candidates(), CONTEXT, 5)
    for _ in range(4):
        clock.now += 1.0
        assert reranker.rerank(make_candidates(), CONTEXT, 5).reason == "state_unavailable"
    assert len(calls) == 1
    store.read = original
    clock.now += 1.5
    assert not reranker.rerank(make_candidates(), CONTEXT, 5).degraded


def test_fewer_candidates_than_slots_is_the_plain_ranking() -> None:
    slate = BanditReranker(settings(), MemoryStore()).rerank(make_candidates(3), CONTEXT, 5)
    assert slate.items == ("m0", "m1", "m2") and not slate.degraded


def test_update_sums_counts_and_linucb_statistics() -> None:
    store = MemoryStore()
    config = settings(policy="linucb")
    reranker = BanditReranker(config, store)
    slate = reranker.rerank(make_candidates(), CONTEXT, 5)
    impressions = outcomes(slate, "r1", clicked={slate.items[1]})
    reranker.update(impressions)
    snapshot = store.read(config.namespace, [item_key(slate.items[1]), "total"], [LINUCB_A, LINUCB_B])
    assert snapshot.stat("total").n == 5 and snapshot.stat("total").r == 1
    assert snapshot.stat(item_key(slate.items[1])).r == 1
    x = linucb_features(
        CONTEXT,
        np.array([imp.item_features for imp in impressions]),
        segments=config.segments,
        max_history=config.max_history,
    )
    np.testing.assert_allclose(snapshot.arrays[LINUCB_A].reshape(x.shape[1], -1), x.T @ x)
    np.testing.assert_allclose(snapshot.arrays[LINUCB_B], x[1])


def test_linucb_state_of_another_layout_degrades_instead_of_failing() -> None:
    store = MemoryStore()
    BanditReranker(settings(policy="linucb", segments=4), store).update(
        outcomes(BanditReranker(settings(), MemoryStore()).rerank(make_candidates(), CONTEXT, 5), "r", {"m0"})
    )
    slate = BanditReranker(settings(policy="linucb", segments=8), store).rerank(make_candidates(), CONTEXT, 5)
    assert slate.degraded and slate.reason == "state_unavailable" and slate.items == PLAIN


def test_dwell_reward_scales_a_click_by_its_dwell_time() -> None:
    served = ServedItem("r", "ucb1", "m1", 0, 1, 1.0, None, 3, (1.0, 0.5, 0.6, 0.0, 0.0))
    assert reward_of(Impression.from_served(served, clicked=True, dwell_seconds=30.0), "dwell", 60.0) == 0.5
    assert reward_of(Impression.from_served(served, clicked=True, dwell_seconds=300.0), "dwell", 60.0) == 1.0
    assert reward_of(Impression.from_served(served, clicked=True, dwell_seconds=30.0), "click", 60.0) == 1.0
    assert reward_of(Impression.from_served(served, clicked=False, dwell_seconds=30.0), "dwell", 60.0) == 0.0


def test_served_records_round_trip_and_bad_fields_are_named() -> None:
    slate = BanditReranker(settings(policy="thompson"), MemoryStore()).rerank(make_candidates(), CONTEXT, 5)
    record = outcomes(slate, "req-1", {"m0"})[0]
    as_dict = {**record.to_dict()}
    assert Impression.from_dict(as_dict) == record
    with pytest.raises(ValueError, match="feedback.jsonl:3: propensity must be a number in"):
        Impression.from_dict({**as_dict, "propensity": 0}, where="feedback.jsonl:3")
    with pytest.raises(ValueError, match="clicked must be true or false"):
        Impression.from_dict({**as_dict, "clicked": "yes"})


def test_context_features_put_unknown_and_out_of_range_segments_in_slot_zero() -> None:
    dim = feature_dim(8)
    known = linucb_features(
        BanditContext(3, 10), candidate_features(make_candidates()), segments=8, max_history=500
    )
    unknown = linucb_features(BanditContext(None, 10), candidate_features(make_candidates()), segments=8,
                              max_history=500)
    beyond = linucb_features(BanditContext(99, 10), candidate_features(make_candidates()), segments=8,
                             max_history=500)
    assert known.shape == (10, dim)
    np.testing.assert_array_equal(unknown, beyond)
    assert not np.array_equal(known, unknown)


def test_bandit_settings_are_a_config_section() -> None:
    cfg = load_config(overrides=["bandit.policy=linucb", "bandit.store_url=redis://127.0.0.1:6379/0",
                                 "bandit.simulator.steps=50"], environ={"HYPERREC__BANDIT__EPSILON": "0.2"})
    assert (cfg.bandit.policy, cfg.bandit.epsilon, cfg.bandit.simulator.steps) == ("linucb", 0.2, 50)
    with pytest.raises(ConfigError, match="bandit.store_url"):
        load_config(overrides=["bandit.store_url=mysql://x"], environ={})
