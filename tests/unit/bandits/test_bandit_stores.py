"""Policy stores: one contract for memory, sqlite and a real redis-server; atomic writes; restart survival;
Redis killed mid-run means the plain ranking with zero errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import CONTEXT, Clock, RedisServer, make_candidates, outcomes

from hyperrec.online.bandits.context import candidate_features
from hyperrec.online.bandits.reranker import BanditReranker
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.sqlite_store import SqliteStore
from hyperrec.online.bandits.state import MemoryStore, StateDelta, StoreUnavailable
from hyperrec.online.bandits.stores import open_store

PLAIN = ("m0", "m1", "m2", "m3", "m4")


def _delta(n: float, r: float, vector: list[float], at: float) -> StateDelta:
    delta = StateDelta(updated_at=at)
    delta.add_stat("item:a", n, r)
    delta.add_stat("total", n, r)
    delta.add_array("v", np.array(vector))
    return delta


def _check_contract(store) -> None:
    assert store.read("ns", ["item:a"], ["v"]).updated_at is None
    store.touch("ns", 5.0)
    store.touch("ns", 9.0)  # only the first touch counts
    assert store.read("ns", [], []).updated_at == 5.0
    store.add("ns", _delta(2, 1, [1.0, 2.0, 3.0], at=10.0))
    store.add("ns", _delta(3, 0.5, [0.5, 0.25, -1.0], at=12.0))
    store.add("other", _delta(7, 7, [9.0, 9.0, 9.0], at=11.0))
    snapshot = store.read("ns", ["item:a", "total", "item:missing"], ["v", "missing"])
    assert (snapshot.stat("item:a").n, snapshot.stat("item:a").r) == (5.0, 1.5)
    assert snapshot.stat("item:missing").n == 0.0
    np.testing.assert_array_equal(snapshot.arrays["v"], [1.5, 2.25, 2.0])
    assert "missing" not in snapshot.arrays
    assert snapshot.updated_at == 12.0
    with pytest.raises(StoreUnavailable, match="layout changed"):
        store.add("ns", _delta(1, 1, [1.0, 1.0], at=13.0))
    after = store.read("ns", ["item:a"], ["v"])
    assert after.stat("item:a").n == 5.0, "a rejected update must change nothing"
    assert after.updated_at == 12.0


def test_sqlite_store_contract(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state" / "bandit.sqlite")
    _check_contract(store)
    store.close()


def test_redis_store_contract(redis_server: RedisServer) -> None:
    store = open_store(BanditConfig(store_url=redis_server.url, store_timeout_s=1.0))
    _check_contract(store)
    store.close()


def test_memory_store_applies_deltas_like_the_durable_ones() -> None:
    store = MemoryStore()
    store.add("ns", _delta(2, 1, [1.0], at=3.0))
    store.add("ns", _delta(1, 0, [2.0], at=4.0))
    snapshot = store.read("ns", ["item:a"], ["v"])
    assert snapshot.stat("item:a").n == 3.0 and snapshot.arrays["v"].tolist() == [3.0]


def test_sqlite_update_that_fails_midway_leaves_no_trace(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    store.add("ns", _delta(1, 1, [1.0, 1.0], at=1.0))

    class Exploding(dict):
        def items(self):
            yield "v", np.array([5.0, 5.0])
            raise RuntimeError("killed mid-write")

    delta = _delta(10, 10, [0.0, 0.0], at=2.0)
    delta.arrays = Exploding()
    with pytest.raises(RuntimeError):
        store.add("ns", delta)
    snapshot = store.read("ns", ["item:a"], ["v"])
    assert snapshot.stat("item:a").n == 1.0 and snapshot.arrays["v"].tolist() == [1.0, 1.0]


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from hyperrec.online.bandits.sqlite_store import SqliteStore
    from hyperrec.online.bandits.state import StateDelta
    store = SqliteStore(sys.argv[1])
    for i in range(int(sys.argv[2])):
        delta = StateDelta(updated_at=float(i))
        delta.add_stat("item:a", 1.0, 0.5)
        delta.add_array("v", np.ones(16))
        store.add("ns", delta)
""")


def test_sqlite_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    SqliteStore(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "150"]) for _ in range(3)]
    assert [w.wait() for w in writers] == [0, 0, 0]
    snapshot = SqliteStore(path).read("ns", ["item:a"], ["v"])
    assert snapshot.stat("item:a").n == 450.0 and snapshot.stat("item:a").r == 225.0
    np.testing.assert_array_equal(snapshot.arrays["v"], np.full(16, 450.0))


_RESTARTED = textwrap.dedent("""
    import json, sys
    import numpy as np
    from hyperrec.online.bandits.context import BanditContext, Candidates
    from hyperrec.online.bandits.reranker import BanditReranker
    from hyperrec.online.bandits.settings import BanditConfig
    from hyperrec.online.bandits.stores import open_store
    settings = BanditConfig.model_validate_json(sys.argv[1])
    reranker = BanditReranker(settings, open_store(settings))
    items = tuple(f"m{j}" for j in range(10))
    candidates = Candidates(items, np.linspace(3.0, 1.0, 10), np.arange(10.0) * 10)
    slate = reranker.rerank(candidates, BanditContext(segment=2, history_length=25), 5)
    print(json.dumps({"items": slate.items, "degraded": slate.degraded}))
""")


def _train_then_restart(settings: BanditConfig) -> tuple[dict, list[str]]:
    """Teach one transformer that m7 gets clicked, drop it, ask a new process what it shows; return that
    answer and what the first transformer would have shown."""
    reranker = BanditReranker(settings, open_store(settings))  # real clock: the new process checks staleness
    slate = reranker.rerank(make_candidates(), CONTEXT, 5)
    assert slate.items == PLAIN
    m7 = tuple(candidate_features(make_candidates())[7].tolist())
    for i in range(30):
        impressions = outcomes(slate, f"r{i}", clicked=set())
        impressions[-1] = replace(
            impressions[-1], item_id="m7", ranker_rank=7, item_features=m7, clicked=True
        )
        assert reranker.update(impressions)
    expected = list(reranker.rerank(make_candidates(), CONTEXT, 5).items)
    reranker.store.close()
    restarted = subprocess.run([sys.executable, "-c", _RESTARTED, settings.model_dump_json()],
                               capture_output=True, text=True, check=True)
    return json.loads(restarted.stdout), expected


def test_state_survives_a_transformer_restart_with_sqlite(tmp_path: Path) -> None:
    settings = BanditConfig(enabled=True, epsilon=0.0, store_url=f"sqlite:///{tmp_path / 'b.sqlite'}", seed=0)
    answer, expected = _train_then_restart(settings)
    assert answer == {"items": expected, "degraded": False}
    assert expected[0] == "m7"


def test_state_survives_a_transformer_restart_with_redis(redis_server: RedisServer) -> None:
    settings = BanditConfig(
        enabled=True, epsilon=0.0, store_url=redis_server.url, store_timeout_s=1.0, seed=0
    )
    answer, expected = _train_then_restart(settings)
    assert answer == {"items": expected, "degraded": False}
    assert expected[0] == "m7"


def test_redis_killed_mid_run_means_plain_ranking_with_zero_errors(redis_server: RedisServer) -> None:
    clock = Clock()
    settings = BanditConfig(enabled=True, policy="thompson", store_url=redis_server.url, store_timeout_s=0.2,
                            unavailable_backoff_s=2.0, seed=3)
    reranker = BanditReranker(settings, open_store(settings), clock=clock)
    served, errors = [], 0
    for step in range(120):
        if step == 40:
            redis_server.kill()
        if step == 80:
            redis_server.start()  # same port and folder: the append-only file brings the state back
        clock.now += 1.0
        try:
            slate = reranker.rerank(make_candidates(), CONTEXT, 5)
            updated = reranker.update(outcomes(slate, f"r{step}", clicked={slate.items[0]}))
        except Exception:  # noqa: BLE001 - the point of the test is that nothing escapes
            errors += 1
            continue
        served.append((step, slate, updated))
    assert errors == 0
    before = [s for step, s, _ in served if step < 40]
    down = [(s, u) for step, s, u in served if 40 <= step < 80]
    after = [s for step, s, _ in served if step >= 84]
    assert not any(s.degraded for s in before)
    assert all(s.degraded and s.reason == "state_unavailable" and s.items == PLAIN for s, _ in down)
    assert all(s.propensities == (1.0,) * 5 for s, _ in down)
    assert not any(updated for _, updated in down)
    assert after and not any(s.degraded for s in after)
    total = reranker.store.read(settings.namespace, ["total"], []).stat("total")
    assert total.n >= 5 * (40 + 36)  # impressions from before the kill survived the restart
