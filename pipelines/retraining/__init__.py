"""The retraining pipeline."""

from hyperrec.pipelines.retraining.pipeline import build_retraining_pipeline

__all__ = ["build_retraining_pipeline"]
