"""canary component."""

from hyperrec.components.canary.component import canary_step

__all__ = ["canary_step"]
