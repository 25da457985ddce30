"""train_baselines component."""

from hyperrec.components.train_baselines.component import train_baselines

__all__ = ["train_baselines"]
