"""The training pipeline."""

from hyperrec.pipelines.training.pipeline import build_training_pipeline

__all__ = ["build_training_pipeline"]
