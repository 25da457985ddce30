"""evaluate component."""

from hyperrec.components.evaluate.component import evaluate

__all__ = ["evaluate"]
