"""A served role stops when the process that started it dies, even when that one is killed outright.

``hyperrec serve`` (``serving/local.py``) names itself in ``HYPERREC_PARENT_PID`` when it starts a child; the
child, first thing in its entry point, asks Linux for SIGTERM on its parent's death (``PR_SET_PDEATHSIG``)
and exits at once if that parent is already gone. This runs in the child's own ``main`` rather than as a
``preexec_fn`` between fork and exec: Python code there can deadlock when the parent has threads (here the
allocator's background thread), and a child stuck before exec never comes up, so a restart never finished.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)

PARENT_PID_ENV = "HYPERREC_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def parent_env() -> dict[str, str]:
    """The environment entry a parent gives the children that must die with it."""
    return {PARENT_PID_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """Get SIGTERM when the parent named in ``HYPERREC_PARENT_PID`` dies; exit now if it already has.

    Without that variable (a role started by hand, or by Kubernetes) this does nothing. Elsewhere than Linux
    only the check for an already-dead parent applies.
    """
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        logger.debug("PR_SET_PDEATHSIG is not available here")
    if os.getppid() != int(expected):  # the parent died before the request above took effect
        sys.exit(1)
