"""Erasure on the Redis policy store: a forgotten user's own fields go, from memory and from the AOF."""

import time

import numpy as np

from hyperrec.online.bandits.redis_store import RedisStore
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.state import StateDelta
from hyperrec.privacy.bandit_state import forget_in_store

GONE, KEPT = "a" * 32, "b" * 32


def aof_holds(directory, needle: bytes) -> bool:
    """Whether any AOF file holds ``needle``. Redis renames its temp-rewrite file and deletes history files
    while a rewrite finishes, so a file listed here may be gone when read: that one holds nothing."""
    for path in directory.rglob("*.aof"):
        try:
            if needle in path.read_bytes():
                return True
        except FileNotFoundError:
            continue
    return False


def test_forget_removes_the_users_fields_and_rewrites_the_append_only_file(redis_server, tmp_path):
    import redis

    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("aof-use-rdb-preamble", "no")  # a plain-command AOF, so a byte search is meaningful
    admin.close()
    store = RedisStore(redis_server.url, timeout_s=2)
    delta = StateDelta(updated_at=1.0)
    for key in (f"user:{GONE}:m1", f"user:{GONE}:m2", f"user:{KEPT}:m1", "item:m1"):
        delta.add_stat(key, 1.0, 0.0)
    delta.add_array("A", np.ones(3))
    store.add("ns", delta)
    assert aof_holds(tmp_path, GONE.encode())
    bandit = BanditConfig(store_url=redis_server.url, namespace="ns")
    assert forget_in_store(bandit, [GONE]) == 2
    snapshot = store.read("ns", [f"user:{GONE}:m1", f"user:{GONE}:m2", f"user:{KEPT}:m1", "item:m1"], ["A"])
    assert set(snapshot.stats) == {f"user:{KEPT}:m1", "item:m1"} and "A" in snapshot.arrays
    for _ in range(100):  # bounded: the rewrite runs in the background
        if not aof_holds(tmp_path, GONE.encode()):
            break
        time.sleep(0.1)
    assert not aof_holds(tmp_path, GONE.encode()) and aof_holds(tmp_path, KEPT.encode())
    store.close()
