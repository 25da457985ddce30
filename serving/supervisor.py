"""Keeping ``hyperrec serve``'s children alive, and stopping them cleanly (issue 11, findings 4 and 6).

``Supervisor`` polls the predictor(s) and the transformer that ``LocalServers`` started. A child that exits
is started again after a back-off (``serving.supervisor``: ``backoff_initial_s`` doubling up to
``backoff_max_s``); one that keeps dying (``max_restarts`` restarts in a row, none of them running
``stable_after_s``) ends ``hyperrec serve`` with an error and a non-zero exit. While a predictor is down the
transformer stays up and answers degraded; its readiness says not ready until the predictor is back.

``stop_signals`` turns SIGTERM (and SIGINT) into ``Stopped`` in the main thread, so that ``hyperrec serve``
unwinds and ``LocalServers.stop`` forwards SIGTERM to every child and waits for it; while the children stop,
further signals are ignored, so a second Ctrl-C cannot leave them orphaned mid-shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from hyperrec.errors import HyperrecError
from hyperrec.online.settings import SupervisorConfig

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(Exception):
    """``hyperrec serve`` was asked to stop (SIGTERM or SIGINT)."""


class GaveUp(HyperrecError):
    """A child kept dying after its restarts; ``hyperrec serve`` exits non-zero."""


class Children(Protocol):
    """What the supervisor needs of ``LocalServers``."""

    def exited(self) -> dict[str, int]: ...

    def restart(self, name: str) -> None: ...

    def log_tail(self, role: str, chars: int = 2000) -> str: ...


@dataclass
class _Record:
    restarts: int = 0
    started_at: float = 0.0


@dataclass
class Supervisor:
    """Restarts dead children with back-off; raises ``GaveUp`` past ``policy.max_restarts``."""

    children: Children
    policy: SupervisorConfig
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    records: dict[str, _Record] = field(default_factory=dict)

    def check(self) -> None:
        """One round: restart every child that has exited since the last round."""
        for name, code in self.children.exited().items():
            self._restart(name, code)

    def run(self, until: float | None, poll_s: float = 0.5) -> None:
        """Check every ``poll_s`` until the monotonic time ``until`` (None: until a signal stops it)."""
        while until is None or self.clock() < until:
            self.check()
            self.sleep(poll_s)

    def _restart(self, name: str, code: int) -> None:
        record = self.records.setdefault(name, _Record(started_at=self.clock()))
        if self.clock() - record.started_at >= self.policy.stable_after_s:
            record.restarts = 0  # it had run long enough: this is a new failure, not the same one again
        if record.restarts >= self.policy.max_restarts:
            raise GaveUp(f"the {name} exited (code {code}) after {record.restarts} restarts; giving up:\n"
                         f"{self.children.log_tail(name)}")
        pause = min(self.policy.backoff_max_s, self.policy.backoff_initial_s * 2 ** record.restarts)
        record.restarts += 1
        logger.warning(
            "the %s exited (code %s); restart %d of at most %d in %.1f s",
            name,
            code,
            record.restarts,
            self.policy.max_restarts,
            pause,
        )
        self.sleep(pause)
        try:
            self.children.restart(name)
        except HyperrecError as exc:  # it did not come up: the next round sees it dead again
            logger.warning("the %s did not come back: %s", name, str(exc).splitlines()[0])
        record.started_at = self.clock()


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT raise ``Stopped``; the previous handlers come back after it."""
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT are ignored (the children are being stopped)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
