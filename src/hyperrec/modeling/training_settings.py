"""The training loop's settings (``TrainingSettings``) and each learned model's defaults for it.

Split from ``hyperrec.modeling.settings``, which holds the per-model sections that embed these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from hyperrec.settings_base import Section as _Section


class TrainingSettings(_Section):
    """The training loop shared by every learned model (see ``hyperrec.modeling.trainer``)."""

    max_epochs: int = Field(3, ge=1, description="Upper bound on passes over the training examples.")
    batch_size: int = Field(32, ge=1, description="Training examples per optimizer step.")
    learning_rate: float = Field(1e-3, gt=0, description="Learning rate of new layers and heads.")
    lm_learning_rate: float = Field(2e-5, gt=0,
                                    description="Learning rate of pretrained language-model layers.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decoupled weight decay (not on biases/norms).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1,
                                description="Share of the planned steps with linear warm-up.")
    linear_decay: bool = Field(True, description="Decay the learning rate linearly to 0 after warm-up.")
    unfreeze_schedule: dict[int, int] = Field(
        {0: 2, 1: 4, 2: -1},
        description="Epoch -> number of top transformer layers that train from that epoch on (-1: all layers "
        "and the embeddings, 0: encoder frozen). Epochs not listed keep the previous value.",
    )
    dropout: float | None = Field(
        0.1, ge=0, lt=1, description="Dropout of the language model while it trains; None keeps its config."
    )
    grad_clip: float | None = Field(1.0, gt=0,
                                    description="Max global gradient norm; None disables clipping.")
    patience: int = Field(
        2, ge=1, description="Early stopping: evaluations without improvement of the validation metric."
    )
    min_delta: float = Field(0.0, ge=0, description="Improvement smaller than this does not count.")
    eval_every_steps: int | None = Field(
        None, ge=1, description="Validate every N steps; None: at the end of every epoch."
    )
    max_steps_per_epoch: int | None = Field(None, ge=1, description="Cap on steps per epoch (demo budgets).")
    max_train_seconds: float | None = Field(
        None, gt=0, description="Safety net, never a budget: training still running after this many seconds "
        "fails with TrainingTimeout (budgets are epochs and steps, so results do not depend on machine "
        "load).",
    )
    checkpoint_dir: Path | None = Field(
        None, description="Where best.safetensors is written on every improvement; None keeps it in memory."
    )
    fused_adamw: bool = Field(True, description="Use the fused AdamW kernel (CPU and CUDA).")
    validation_metric: str = Field("ndcg@10", description="Metric the injected validator is asked for.")
    log_every_steps: int = Field(50, ge=1, description="Send training loss to on_metrics every N steps.")

    @field_validator("unfreeze_schedule")
    @classmethod
    def _schedule(cls, value: dict[int, int]) -> dict[int, int]:
        if 0 not in value:
            raise ValueError("unfreeze_schedule must say what trains at epoch 0")
        if any(epoch < 0 for epoch in value) or any(n < -1 for n in value.values()):
            raise ValueError("unfreeze_schedule epochs must be >= 0 and layer counts >= -1")
        return dict(sorted(value.items()))

    def steps_per_epoch(self, n_examples: int, per_step: int | None = None) -> int:
        """Optimizer steps of one epoch over ``n_examples``, ``per_step`` (default ``batch_size``) at a time,
        capped at ``max_steps_per_epoch`` when that is set."""
        steps = math.ceil(n_examples / (per_step or self.batch_size))
        return min(steps, self.max_steps_per_epoch) if self.max_steps_per_epoch else steps


#: Per-model defaults of the training loop. A partial ``training:`` mapping in YAML is merged into these (not
#: into TrainingSettings' generic defaults), so that overriding one key keeps the model's other defaults.
#: The next-item budget is epochs with early stopping, never seconds: without a time cap on a GPU the LM model
#: peaks near epoch 16 and the ID-only ablation near 28, so 30 epochs with patience 5 lets both converge and
#: the demo stays under 10 minutes on 2 idle cores.
NEXT_ITEM_TRAINING: dict[str, Any] = {
    "max_epochs": 30,
    "batch_size": 64,
    "learning_rate": 2e-3,
    "lm_learning_rate": 2e-5,
    "weight_decay": 0.0,
    "warmup_ratio": 0.0,
    "linear_decay": False,
    "unfreeze_schedule": {0: 0},
    "patience": 5,
    "grad_clip": 1.0,
}
BI_ENCODER_TRAINING: dict[str, Any] = {
    "max_epochs": 2,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "lm_learning_rate": 5e-5,
    "unfreeze_schedule": {0: 2, 1: 4},
    "patience": 1,
}
CROSS_ENCODER_TRAINING: dict[str, Any] = {
    "max_epochs": 2,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "lm_learning_rate": 3e-5,
    "unfreeze_schedule": {0: 2, 1: 4},
    "patience": 1,
}


def merged_training(defaults: dict[str, Any], value: Any) -> Any:
    """A partial ``training:`` mapping merged into a model's own defaults; anything else as given."""
    if isinstance(value, Mapping):
        merged = dict(defaults)
        merged.update(value)
        return merged
    return value
