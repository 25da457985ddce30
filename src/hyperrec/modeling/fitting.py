"""What every learned model's ``fit`` builds around ``Trainer.fit``: the recipe's optimizer and schedule
(``hyperrec.modeling.finetune``) and the validator (``default_validator`` unless one is given)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hyperrec.modeling.finetune import build_optimizer, param_groups, warmup_schedule
from hyperrec.modeling.settings import RuntimeSettings
from hyperrec.modeling.trainer import MetricsCallback, Step, Trainer, TrainResult, Validator
from hyperrec.modeling.training_settings import TrainingSettings

if TYPE_CHECKING:
    from hyperrec.data.prepared import PreparedData
    from hyperrec.modeling.item_encoder import TextEncoder
    from hyperrec.models.base import Recommender


def validator_or_default(validate: Validator | None, data: PreparedData, training: TrainingSettings,
                         runtime: RuntimeSettings) -> Validator:
    """``validate``, or when None the evaluation harness's ``training.validation_metric`` on the validation
    split of ``data`` (``default_validator`` with the runtime's seed)."""
    if validate is not None:
        return validate
    from hyperrec.modeling.validation import default_validator

    return default_validator(data, metric=training.validation_metric, seed=runtime.seed)


def fit_with_recipe(
    recommender: Recommender,
    module: nn.Module,
    data: PreparedData,
    *,
    training: TrainingSettings,
    runtime: RuntimeSettings,
    lm_modules: Sequence[TextEncoder],
    head_modules: Sequence[nn.Module],
    device: torch.device,
    steps_per_epoch: int,
    epoch_batches: Callable[[int], Iterable[Any]],
    step: Step,
    validate: Validator | None,
    on_metrics: MetricsCallback | None,
    invalidate: Callable[[], None] | None = None,
) -> TrainResult:
    """Train ``module`` with AdamW over the recipe's parameter groups and the warm-up schedule, validating
    with ``validate`` (None: ``default_validator`` on ``data`` with ``training.validation_metric``).

    Args:
        recommender: what the validator scores; its ``name`` names the run in the logs.
        module: what trains; its best validated state is restored at the end.
        data: the prepared folder the default validator reads.
        training: the training loop's settings.
        runtime: the seed (of the default validator) and autocast.
        lm_modules: the pretrained encoders: ``lm_learning_rate`` and the unfreeze schedule.
        head_modules: the modules trained from scratch at ``learning_rate``.
        device: where the forward passes run.
        steps_per_epoch: the optimizer steps of one epoch (the schedule plans ``max_epochs`` of them).
        epoch_batches: ``epoch -> batches`` of that epoch.
        step: ``batch -> (mean loss, number of examples)``.
        validate: ``validate(model) -> float`` for early stopping, or None.
        on_metrics: receives training and validation metrics.
        invalidate: drops the recommender's caches after weights change.

    Returns:
        What ``Trainer.fit`` returns.
    """
    optimizer = build_optimizer(param_groups(lm_modules, head_modules, training), training, device)
    scheduler = warmup_schedule(optimizer, steps_per_epoch * training.max_epochs, training)
    trainer = Trainer(training, runtime, validate=validator_or_default(validate, data, training, runtime),
                      on_metrics=on_metrics, name=recommender.name)
    return trainer.fit(
        module, optimizer, recommender=recommender, epoch_batches=epoch_batches, step=step, device=device,
        steps_per_epoch=steps_per_epoch, encoders=lm_modules, scheduler=scheduler, invalidate=invalidate,
    )
