"""Policy state: additive counters and arrays, and the ``PolicyStore`` interface every backend implements.

Every piece of state is a SUM (impressions, rewards, the LinUCB design matrix x xᵀ and vector r x). Sums
commute, so replicas that apply their feedback in any order, concurrently, reach the same state: a store only
has to apply one ``StateDelta`` atomically. Backends: ``MemoryStore`` (one process: the simulator),
``SqliteStore`` (embedded, transactions), ``RedisStore`` (cluster, MULTI/EXEC).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or read; callers fall back to the plain ranking."""


@dataclass(frozen=True)
class Stat:
    """Impressions and summed reward of one key (an item, a ranker rank, or the total)."""

    n: float = 0.0
    r: float = 0.0


@dataclass(frozen=True)
class StateSnapshot:
    """What one request reads: the stats of the keys it asked for (missing: zero) and the named arrays."""

    stats: Mapping[str, Stat]
    arrays: Mapping[str, np.ndarray]
    #: Unix time of the last update (or of the store's creation); None: never touched.
    updated_at: float | None

    def stat(self, key: str) -> Stat:
        return self.stats.get(key, Stat())


@dataclass
class StateDelta:
    """Increments from one batch of feedback, applied atomically by ``PolicyStore.add``."""

    stats: dict[str, Stat] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    updated_at: float = 0.0

    def add_stat(self, key: str, n: float, r: float) -> None:
        old = self.stats.get(key, Stat())
        self.stats[key] = Stat(old.n + n, old.r + r)

    def add_array(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64).ravel()
        old = self.arrays.get(name)
        self.arrays[name] = value.copy() if old is None else old + value

    @property
    def empty(self) -> bool:
        return not self.stats and not self.arrays


class PolicyStore(Protocol):
    """Shared, durable policy state. Every method raises ``StoreUnavailable`` when the backend fails."""

    def read(self, namespace: str, keys: Iterable[str], arrays: Iterable[str]) -> StateSnapshot:
        """The stats of ``keys`` and the arrays named (absent ones are left out of the snapshot)."""
        ...

    def add(self, namespace: str, delta: StateDelta) -> None:
        """Apply all increments of ``delta`` in one atomic step and set the update time."""
        ...

    def touch(self, namespace: str, now: float) -> None:
        """Record ``now`` as the update time when the namespace has none yet (a fresh state is not stale)."""
        ...

    def close(self) -> None:
        ...


class MemoryStore:
    """In-process state (the simulator, unit tests of policies): a dict behind a lock, no durability."""

    def __init__(self) -> None:
        self._stats: dict[tuple[str, str], Stat] = {}
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        self._updated: dict[str, float] = {}
        self._lock = threading.Lock()

    def read(self, namespace: str, keys: Iterable[str], arrays: Iterable[str]) -> StateSnapshot:
        with self._lock:
            stats = {k: self._stats[(namespace, k)] for k in keys if (namespace, k) in self._stats}
            found = {a: self._arrays[(namespace, a)].copy() for a in arrays if (namespace, a) in self._arrays}
            return StateSnapshot(stats, found, self._updated.get(namespace))

    def add(self, namespace: str, delta: StateDelta) -> None:
        with self._lock:
            for key, stat in delta.stats.items():
                old = self._stats.get((namespace, key), Stat())
                self._stats[(namespace, key)] = Stat(old.n + stat.n, old.r + stat.r)
            for name, value in delta.arrays.items():
                old_array = self._arrays.get((namespace, name))
                self._arrays[(namespace, name)] = value.copy() if old_array is None else old_array + value
            self._updated[namespace] = delta.updated_at

    def touch(self, namespace: str, now: float) -> None:
        with self._lock:
            self._updated.setdefault(namespace, now)

    def close(self) -> None:
        """Nothing to release."""
