"""Policy state in Redis, shared by every transformer replica of a cluster.

Layout under ``<namespace>``: a hash ``:stats`` (fields ``n:<key>`` and ``r:<key>``, HINCRBYFLOAT), one string
per array ``:arr:<name>`` (little-endian float64, added element-wise by a Lua script so a request reads it
with one GET), and a hash ``:meta`` with ``updated_at``. One ``add`` is one Lua script: Redis runs it
whole and alone, and it checks every array size before writing anything. Every Redis failure (refused, timed
out, killed mid-call) becomes ``StoreUnavailable``, which the re-ranker turns into the plain ranking.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hyperrec.online.bandits.state import Stat, StateDelta, StateSnapshot, StoreUnavailable

#: KEYS: stats hash, meta hash, then one key per array. ARGV: updated_at, field count m, m (field, increment)
#: pairs, then one float64 blob per array key. Sizes are checked before anything is written, so a layout
#: mismatch changes nothing (MULTI/EXEC alone would not roll back the commands before a failing one).
_APPLY_DELTA = """
local n_arrays = #KEYS - 2
local m = tonumber(ARGV[2])
local olds = {}
for a = 1, n_arrays do
  local old = redis.call('GET', KEYS[a + 2])
  local delta = ARGV[2 + 2 * m + a]
  if old and #old ~= #delta then
    return redis.error_reply('array ' .. KEYS[a + 2] .. ' holds ' .. (#old / 8) .. ' values, the update ' ..
      (#delta / 8) .. ': the feature layout changed; use a new bandit.namespace')
  end
  olds[a] = old
end
for i = 1, m do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1 + 2 * i], ARGV[2 + 2 * i])
end
for a = 1, n_arrays do
  local delta = ARGV[2 + 2 * m + a]
  local old = olds[a]
  if not old then
    redis.call('SET', KEYS[a + 2], delta)
  else
    local out = {}
    for i = 1, #delta, 8 do
      out[#out + 1] = struct.pack('<d', struct.unpack('<d', old, i) + struct.unpack('<d', delta, i))
    end
    redis.call('SET', KEYS[a + 2], table.concat(out))
  end
end
local current = redis.call('HGET', KEYS[2], 'updated_at')
if not current or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[2], 'updated_at', ARGV[1])
end
return 1
"""


class RedisStore:
    """``PolicyStore`` on a Redis server given by URL (``redis://host:port/db``)."""

    def __init__(self, url: str, *, timeout_s: float = 0.05) -> None:
        self.url = url
        # No retries: a failed call must fall back at once rather than hold the request.
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._apply = self._client.register_script(_APPLY_DELTA)

    def read(self, namespace: str, keys: Iterable[str], arrays: Iterable[str]) -> StateSnapshot:
        keys, names = list(keys), list(arrays)
        fields = [f"{kind}:{key}" for key in keys for kind in ("n", "r")]
        try:
            pipe = self._client.pipeline(transaction=True)
            if fields:
                pipe.hmget(f"{namespace}:stats", fields)
            for name in names:
                pipe.get(f"{namespace}:arr:{name}")
            pipe.hget(f"{namespace}:meta", "updated_at")
            replies = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"bandit state at {self.url} unavailable: {exc}") from exc
        stats: dict[str, Stat] = {}
        if fields:
            values = replies.pop(0)
            for i, key in enumerate(keys):
                n, r = values[2 * i], values[2 * i + 1]
                if n is not None:
                    stats[key] = Stat(float(n), float(r or 0.0))
        found = {
            name: np.frombuffer(blob, dtype="<f8").astype(np.float64)
            for name, blob in zip(names, replies[:-1]) if blob is not None
        }
        updated = replies[-1]
        return StateSnapshot(stats, found, None if updated is None else float(updated))

    def add(self, namespace: str, delta: StateDelta) -> None:
        names = list(delta.arrays)
        keys = [f"{namespace}:stats", f"{namespace}:meta", *(f"{namespace}:arr:{name}" for name in names)]
        args: list[str | float | bytes] = [repr(float(delta.updated_at)), 2 * len(delta.stats)]
        for key, stat in delta.stats.items():
            args += [f"n:{key}", repr(float(stat.n)), f"r:{key}", repr(float(stat.r))]
        args += [np.ascontiguousarray(delta.arrays[name], dtype="<f8").tobytes() for name in names]
        try:
            self._apply(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot update bandit state at {self.url}: {exc}") from exc

    def touch(self, namespace: str, now: float) -> None:
        try:
            self._client.hsetnx(f"{namespace}:meta", "updated_at", repr(float(now)))
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"bandit state at {self.url} unavailable: {exc}") from exc

    def close(self) -> None:
        self._client.close()
