"""Remove forgotten users' own counters from the bandit's policy state (hyperrec.online.bandits).

Per-user state is keyed ``user:<pseudonym>:<item>`` (``policies.user_item_key``): sqlite rows of the ``stats``
table, Redis fields ``n:<key>`` / ``r:<key>`` of the ``<namespace>:stats`` hash. Item-level counters and the
LinUCB sums keep the user's anonymous additive share: they hold no identifier, and the next retraining's fresh
namespace or the decay of old state removes it (docs/PRIVACY.md).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from hyperrec.online.bandits.policies import user_item_key
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.stores import SQLITE_PREFIX

logger = logging.getLogger(__name__)

_SCAN_COUNT = 1000


def user_prefix(pseudonym: str) -> str:
    return user_item_key(pseudonym, "")


def local_store_folder(bandit: BanditConfig) -> Path | None:
    """The folder of a sqlite store (its file, -wal and -shm), for the residue check; None for Redis."""
    url = bandit.store_url
    return Path(url[len(SQLITE_PREFIX):]).parent if url.startswith(SQLITE_PREFIX) else None


def forget_in_store(bandit: BanditConfig, pseudonyms: Iterable[str]) -> int:
    """Delete the users' keys from the store of ``bandit.store_url``; returns how many keys went.

    A sqlite file that does not exist yet holds nobody (0); an unreachable Redis raises its own error.
    """
    prefixes = [user_prefix(p) for p in pseudonyms]
    url = bandit.store_url
    if url.startswith(SQLITE_PREFIX):
        return _forget_sqlite(Path(url[len(SQLITE_PREFIX):]), bandit.namespace, prefixes)
    return _forget_redis(url, bandit.namespace, prefixes)


def _forget_sqlite(path: Path, namespace: str, prefixes: list[str]) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute(
            "PRAGMA secure_delete=ON"
        )  # zero the deleted rows' bytes in the pages, not only unlink them
        db.execute("BEGIN IMMEDIATE")
        removed = 0
        for prefix in prefixes:
            # substr, not LIKE: '_' in a key would be a LIKE wildcard
            removed += db.execute("DELETE FROM stats WHERE ns = ? AND substr(key, 1, ?) = ?",
                                  (namespace, len(prefix), prefix)).rowcount
        db.execute("COMMIT")
        if removed:  # the write-ahead log still holds the old page images: fold it in and empty it
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                logger.warning(
                    "bandit state %s: a reader blocked the WAL checkpoint; old pages remain in %s-wal "
                    "until the next checkpoint",
                    path,
                    path,
                )
        return removed
    finally:
        db.close()


def _forget_redis(url: str, namespace: str, prefixes: list[str]) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        removed = 0
        stats = f"{namespace}:stats"
        for prefix in prefixes:
            fields = [
                f
                for kind in ("n", "r")
                for f, _ in client.hscan_iter(
                    stats, match=f"{kind}:{_glob_escape(prefix)}*", count=_SCAN_COUNT
                )
            ]
            if fields:
                client.hdel(stats, *fields)
                removed += len({f.split(b":", 1)[1] for f in fields})  # one key = its n: and r: fields
        if removed:
            _compact_append_only_file(client)
        return removed
    finally:
        client.close()


def _compact_append_only_file(client: object) -> None:
    """With AOF persistence the file still replays the deleted fields: ask Redis to rewrite it (in the
    background; a rewrite already running or AOF being off is fine: the next rewrite drops them)."""
    import redis

    try:
        if client.config_get("appendonly").get("appendonly") == "yes":  # type: ignore[attr-defined]
            client.bgrewriteaof()  # type: ignore[attr-defined]
    except redis.ResponseError as exc:
        logger.warning("could not start an AOF rewrite after the erasure: %s", exc)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
