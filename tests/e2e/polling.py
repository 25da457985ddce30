"""Bounded polling for tests that wait on a real server (Prometheus scrapes, readiness): a fixed number of
looks, never an open-ended wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLLS, POLL_SECONDS = 120, 0.25


def poll(condition: Callable[[], T], what: str) -> T:
    """The first truthy value of ``condition`` within ``POLLS`` looks; AssertionError naming ``what`` if
    none."""
    for _ in range(POLLS):
        value = condition()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"never saw {what} in {POLLS} polls")
