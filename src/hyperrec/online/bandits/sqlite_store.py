"""Embedded policy state in one sqlite file: every ``add`` is one IMMEDIATE transaction.

sqlite's journal makes a transaction all-or-nothing across crashes and kills, and IMMEDIATE takes the write
lock up front, so processes of one host sharing the file (several transformer workers) never interleave the
read-modify-write of an array. WAL mode lets readers go on while one process writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hyperrec.online.bandits.state import Stat, StateDelta, StateSnapshot, StoreUnavailable

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stats (ns TEXT NOT NULL, key TEXT NOT NULL, n REAL NOT NULL, r REAL NOT NULL,"
    " PRIMARY KEY (ns, key))",
    "CREATE TABLE IF NOT EXISTS arrays (ns TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY (ns, name))",
    "CREATE TABLE IF NOT EXISTS meta (ns TEXT PRIMARY KEY, updated_at REAL NOT NULL)",
)
_UPSERT_STAT = (
    "INSERT INTO stats (ns, key, n, r) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (ns, key) DO UPDATE SET n = n + excluded.n, r = r + excluded.r"
)
#: Most keys bound in one SELECT (sqlite's default limit on host parameters is 32766).
_CHUNK = 500


class SqliteStore:
    """``PolicyStore`` on a local sqlite file (created with its folder when missing)."""

    def __init__(self, path: Path, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open bandit state {self.path}: {exc}") from exc

    def read(self, namespace: str, keys: Iterable[str], arrays: Iterable[str]) -> StateSnapshot:
        keys, names = list(keys), list(arrays)
        try:
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    stats = self._read_stats(namespace, keys)
                    found = self._read_arrays(namespace, names)
                    row = self._db.execute(
                        "SELECT updated_at FROM meta WHERE ns = ?", (namespace,)
                    ).fetchone()
                finally:
                    self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read bandit state {self.path}: {exc}") from exc
        return StateSnapshot(stats, found, None if row is None else float(row[0]))

    def add(self, namespace: str, delta: StateDelta) -> None:
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._apply(namespace, delta)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot update bandit state {self.path}: {exc}") from exc

    def touch(self, namespace: str, now: float) -> None:
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR IGNORE INTO meta (ns, updated_at) VALUES (?, ?)", (namespace, now)
                )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot update bandit state {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _read_stats(self, namespace: str, keys: list[str]) -> dict[str, Stat]:
        stats: dict[str, Stat] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, n, r FROM stats WHERE ns = ? AND key IN ({marks})", (namespace, *chunk)
            )
            stats.update({key: Stat(float(n), float(r)) for key, n, r in rows})
        return stats

    def _read_arrays(self, namespace: str, names: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for name in names:
            row = self._db.execute(
                "SELECT value FROM arrays WHERE ns = ? AND name = ?", (namespace, name)
            ).fetchone()
            if row is not None:
                found[name] = np.frombuffer(row[0], dtype=np.float64).copy()
        return found

    def _apply(self, namespace: str, delta: StateDelta) -> None:
        self._db.executemany(
            _UPSERT_STAT, [(namespace, key, stat.n, stat.r) for key, stat in delta.stats.items()]
        )
        for name, value in delta.arrays.items():
            old = self._read_arrays(namespace, [name]).get(name)
            if old is not None and old.size != value.size:
                raise StoreUnavailable(
                    f"bandit state array {name!r} in {self.path} has {old.size} values, the update "
                    f"{value.size}: the feature layout changed; use a new bandit.namespace"
                )
            total = value if old is None else old + value
            self._db.execute(
                "INSERT INTO arrays (ns, name, value) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, name) DO UPDATE SET value = excluded.value",
                (namespace, name, np.ascontiguousarray(total, dtype=np.float64).tobytes()),
            )
        self._db.execute(
            "INSERT INTO meta (ns, updated_at) VALUES (?, ?) ON CONFLICT (ns) DO UPDATE SET updated_at ="
            " max(updated_at, excluded.updated_at)",
            (namespace, delta.updated_at),
        )
