"""Settings of the evaluation harness (``evaluation:``): cutoffs, protocols and the gate's metric.

This module must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

from pydantic import Field

from hyperrec.settings_base import Section as _Section


class EvaluationConfig(_Section):
    """Ranking metrics and the two protocols."""

    k_values: list[int] = Field([10, 20], description="Cutoffs reported for HR/NDCG/MAP/Recall.")
    sampled_negatives: int = Field(
        100, ge=1, description="Uniform negatives per user in the sampled protocol."
    )
    top_n: int = Field(100, ge=1, description="Recommendations written per user to recommendations.jsonl.")
    gate_metric: str = Field("full.ndcg@10", description="Metric the registration gate compares.")
    user_batch_size: int = Field(256, ge=1)
