"""``open_store``: the ``PolicyStore`` named by ``bandit.store_url``."""

from __future__ import annotations

from pathlib import Path

from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.state import PolicyStore

SQLITE_PREFIX = "sqlite:///"


def open_store(settings: BanditConfig) -> PolicyStore:
    """sqlite:///relative/or//absolute/path.sqlite (embedded) or redis://host:port/db (shared by replicas).

    A Redis store connects lazily, so opening one never fails; a sqlite file that cannot be opened raises
    StoreUnavailable.
    """
    url = settings.store_url
    if url.startswith(SQLITE_PREFIX):
        from hyperrec.online.bandits.sqlite_store import SqliteStore

        return SqliteStore(Path(url[len(SQLITE_PREFIX):]))
    from hyperrec.online.bandits.redis_store import RedisStore

    return RedisStore(url, timeout_s=settings.store_timeout_s)
