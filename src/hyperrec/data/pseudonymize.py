"""Keyed pseudonyms for user ids.

A plain hash of a user id can be reversed by hashing every plausible id; an HMAC with a secret key cannot,
yet it stays stable across runs, so training data and serving requests map the same person to the same
pseudonym. The key lives outside the config (env var or a 0600 secret file) and is never logged or written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path

import pandas as pd

from hyperrec.config import PrivacyConfig
from hyperrec.errors import ConfigError

logger = logging.getLogger(__name__)

#: Hex characters kept from the HMAC-SHA256 digest (16 bytes): collisions stay negligible below 10^15 users.
PSEUDONYM_HEX_CHARS = 32
#: How a data file marks a user id that is already a pseudonym (e.g. ``hyperrec feedback export``): the id is
#: ``pseudonym:<32 hex>`` and data prep keeps the pseudonym instead of hashing it a second time.
PSEUDONYM_PREFIX = "pseudonym:"
_MARKED = re.compile(rf"^{PSEUDONYM_PREFIX}([0-9a-f]{{{PSEUDONYM_HEX_CHARS}}})$")
_KEY_FILE_BYTES = 32


class Pseudonymizer:
    """Maps raw user ids to HMAC-SHA256 pseudonyms under one secret key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ConfigError("the pseudonym key must not be empty")
        self._key = key

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"

    @classmethod
    def from_config(cls, privacy: PrivacyConfig) -> Pseudonymizer:
        """Key from the env var ``privacy.pseudonym_key_env``, else from (or into) ``pseudonym_key_file``."""
        from_env = os.environ.get(privacy.pseudonym_key_env)
        if from_env is not None:
            if not from_env.strip():
                raise ConfigError(f"env var {privacy.pseudonym_key_env} is set but empty")
            return cls(from_env.strip().encode("utf-8"))
        return cls(_read_or_create_key_file(privacy.pseudonym_key_file.expanduser()))

    def pseudonymize(self, user_id: str) -> str:
        """The pseudonym of one raw user id (exact string: callers strip whitespace themselves)."""
        digest = hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_HEX_CHARS]

    def pseudonymize_series(self, user_ids: pd.Series) -> pd.Series:
        """Pseudonymize a column, hashing each distinct id once; missing ids stay missing."""
        present = user_ids.dropna()
        mapping = {raw: self.pseudonymize(str(raw)) for raw in present.unique()}
        return user_ids.map(mapping).astype(object).where(user_ids.notna(), None)

    def pseudonymize_or_keep(self, user_ids: pd.Series) -> pd.Series:
        """Like ``pseudonymize_series``, but ids marked ``pseudonym:<hex>`` keep their pseudonym. Data files
        that mix raw ids with exported feedback (already pseudonymous) then name each user once."""
        marked = user_ids.astype(object).where(user_ids.notna(), None).map(
            lambda raw: (m.group(1) if (m := _MARKED.match(raw)) else None) if isinstance(raw, str) else None)
        return self.pseudonymize_series(user_ids.where(marked.isna(), None)).where(marked.isna(), marked)


def mark_pseudonym(pseudonym: str) -> str:
    """The id under which a pseudonym is written to a data file that data prep reads again."""
    return f"{PSEUDONYM_PREFIX}{pseudonym}"


def _read_or_create_key_file(path: Path) -> bytes:
    """Read the secret key file, creating it with a random key (mode 0600) when it does not exist."""
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(_KEY_FILE_BYTES)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it between our read and our create
        return _read_key_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot create pseudonym key file {path}: {exc.strerror}") from None
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(key + "\n")
    logger.info("created a new pseudonym key file at %s (mode 0600); keep it to keep pseudonyms stable", path)
    return key.encode("ascii")


def _read_key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read pseudonym key file {path}: {exc.strerror}") from None
    if not key:
        raise ConfigError(f"pseudonym key file {path} is empty")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("pseudonym key file %s is readable by other users; chmod 600 it", path)
    return key
