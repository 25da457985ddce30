"""fine_tune component."""

from hyperrec.components.fine_tune.component import fine_tune

__all__ = ["fine_tune"]
