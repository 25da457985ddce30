"""deploy component."""

from hyperrec.components.deploy.component import deploy

__all__ = ["deploy"]
