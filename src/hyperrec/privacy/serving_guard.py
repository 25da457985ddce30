"""The transformer's side of privacy: consent at request time and the authenticated erasure endpoints.

- ``personalizes(user)``: False for users whose latest consent-ledger entry withdraws consent; the transformer
  then answers them with the non-personalized ranking (global popularity, no history, no segment, no per-user
  bandit state). The ledger is re-read when its file changes (one ``stat`` per request).
- ``POST /hyperrec/forget`` ``{"user_ids": ["42", ...]}``: the serving half of ``hyperrec forget``: erasure
  ledger, the served journal's recent answers, the feedback log, the bandit's per-user state and the bundle's
  user → segment cache. The prepared data and the registry are the CLI's business (they live elsewhere).
- ``POST /hyperrec/consent`` ``{"user_ids": [...], "consent": false}``: appends to the consent ledger.

Both endpoints need ``Authorization: Bearer <token>``, the token read from the env var named by
``privacy.erasure_token_env`` and compared in constant time; without a token they are not registered at all.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.data.ledger import CONSENT_LEDGER, ERASURE_LEDGER, ConsentLedger, ErasureLedger, state_dir
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.privacy.bandit_state import forget_in_store
from hyperrec.privacy.erase import forget_feedback

logger = logging.getLogger(__name__)

MAX_USERS_PER_CALL = 1000


class PrivacyGuard:
    """Consent lookups and the erasure/consent endpoints of one transformer."""

    def __init__(self, folder: Path, *, token: str | None, feedback_dir: Path, bandit: BanditConfig | None,
                 pseudonymize: Callable[[str], str]) -> None:
        self.erasures = ErasureLedger(folder / ERASURE_LEDGER)
        self.consent = ConsentLedger(folder / CONSENT_LEDGER)
        self.feedback_dir = Path(feedback_dir)
        self.bandit = bandit
        self._token = token or None
        self._pseudonymize = pseudonymize
        self._seen: tuple[int, int] | None = None
        self._withdrawn: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, cfg: HyperrecConfig, *, feedback_dir: Path, bandit: BanditConfig | None,
                    pseudonymize: Callable[[str], str]) -> PrivacyGuard:
        token = os.environ.get(cfg.privacy.erasure_token_env, "").strip()
        return cls(
            state_dir(cfg), token=token, feedback_dir=feedback_dir, bandit=bandit, pseudonymize=pseudonymize
        )

    def personalizes(self, user: str) -> bool:
        """Whether ``user`` (a pseudonym) may get personalized answers."""
        try:
            stat = self.consent.path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            key = None
        if key != self._seen:
            self._withdrawn = frozenset(self.consent.withdrawn()) if key is not None else frozenset()
            self._seen = key
        return user not in self._withdrawn

    def authorized(self, header: str | None) -> bool:
        """``Authorization: Bearer <token>`` against the configured token, in constant time."""
        if self._token is None or not header:
            return False
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token.encode()
        )

    def pseudonyms(self, body: Any) -> list[str]:
        """The pseudonyms of ``{"user_ids": [...]}``; ValueError with a clear message otherwise."""
        ids = body.get("user_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > MAX_USERS_PER_CALL:
            raise ValueError(f"user_ids must be a list of 1-{MAX_USERS_PER_CALL} user ids")
        out = []
        for i, raw in enumerate(ids):
            if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).strip():
                raise ValueError(f"user_ids[{i}] must be a non-empty string or an integer")
            out.append(self._pseudonymize(str(raw).strip()))
        return sorted(set(out))

    def forget(self, pseudonyms: list[str], *, journal: Any, catalogues: Iterable[Any]) -> dict[str, int]:
        """Erase the users from everything this transformer holds (see the module doc)."""
        users = set(pseudonyms)
        self.erasures.record(pseudonyms)
        cached = journal.forget(users) if journal is not None else 0
        segments = sum(
            catalogue.user_segments.pop(p, None) is not None for catalogue in catalogues for p in users
        )
        lines = forget_feedback(self.feedback_dir, users)
        keys = forget_in_store(self.bandit, users) if self.bandit is not None and self.bandit.enabled else 0
        logger.info(
            "forgot %d user(s): %d cached answers, %d feedback lines, %d bandit keys, %d segment entries",
            len(users),
            cached,
            lines,
            keys,
            segments,
        )
        return {"users": len(users), "cached_answers": cached, "feedback_lines": lines, "bandit_keys": keys,
                "segment_entries": segments}

    def add_routes(self, app: Any, *, journal: Any, catalogues: Callable[[], Iterable[Any]]) -> None:
        """Register the two endpoints (only when a token is configured)."""
        if self._token is None:
            logger.info("no erasure token configured: /hyperrec/forget and /hyperrec/consent are off")
            return
        from fastapi import Body, Header, HTTPException

        def check(authorization: str | None, body: Any) -> list[str]:
            if not self.authorized(authorization):
                raise HTTPException(
                    401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
                )
            try:
                return self.pseudonyms(body)
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from None

        @app.post("/hyperrec/forget")
        async def forget_users(
            body: Any = Body(...), authorization: str | None = Header(None)  # noqa: B008
        ) -> dict[str, int]:
            users = check(authorization, body)
            return await asyncio.to_thread(self.forget, users, journal=journal, catalogues=list(catalogues()))

        @app.post("/hyperrec/consent")
        async def set_consent(
            body: Any = Body(...), authorization: str | None = Header(None)  # noqa: B008
        ) -> dict[str, Any]:
            users = check(authorization, body)
            if not isinstance(body.get("consent"), bool):
                raise HTTPException(400, "consent must be true or false")
            self.consent.record(users, body["consent"])
            return {"users": len(users), "consent": body["consent"]}
