"""Process-wide compute settings (threads), applied once per step."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def set_threads(threads: int) -> None:
    """Bound torch and BLAS threads: on a 2-core node more threads only add contention."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    try:
        import torch
    except ImportError:  # torch is a dependency, but data prep alone must not require it
        return
    torch.set_num_threads(threads)
