"""Which revision answers a request: the embedded canary's traffic split (``serving.split``).

Per request (KServe's ``canaryTrafficPercent`` is per request, not sticky): the challenger with chance
``percent`` / 100. Sticky: per user, by a stable hash of the pseudonym into 10 000 buckets, so a user sees
one revision for the whole canary step and moves only when the share grows (bucket < percent · 100).
The share may change while serving (``set_percent``: the local canary controller).
"""

from __future__ import annotations

import hashlib
import random

BUCKETS = 10_000


class TrafficSplit:
    """Champion/challenger choice for each request."""

    def __init__(self, percent: int, *, sticky: bool = False, rng: random.Random | None = None) -> None:
        self.sticky = sticky
        self._rng = rng or random.Random()
        self.percent = 0
        self.set_percent(percent)

    def set_percent(self, percent: int) -> None:
        """Move the challenger's share (0..100)."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"the challenger's share must be an integer percent in 0..100, got {percent!r}")
        self.percent = percent

    def to_challenger(self, user: str | None) -> bool:
        """Whether this request goes to the challenger (``user``: the pseudonym, used when sticky)."""
        percent = self.percent
        if percent <= 0:
            return False
        if percent >= 100:
            return True
        if self.sticky and user is not None:
            return user_bucket(user) < percent * (BUCKETS // 100)
        return self._rng.random() * 100 < percent


def user_bucket(user: str) -> int:
    """A stable bucket in 0..BUCKETS-1 for a pseudonym (the same in every process and run)."""
    digest = hashlib.blake2b(user.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS
