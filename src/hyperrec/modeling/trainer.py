"""The training loop shared by every learned model: ``Trainer.fit``.

It runs ``step(batch) -> (loss, n_examples)`` over ``epoch_batches(epoch)`` with the recipe of
``hyperrec.modeling.finetune`` (unfreeze schedule, autocast, clipping, warm-up schedule), validates with an
*injected* ``validate(recommender) -> float`` after every epoch (or every ``eval_every_steps``), stops after
``patience`` evaluations without improvement and restores the best state. Budgets are epochs and steps only;
``max_train_seconds`` is a safety net that fails the run (``TrainingTimeout``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hyperrec.errors import ModelError
from hyperrec.modeling.finetune import apply_freezing, autocast, layers_for_epoch, save_state
from hyperrec.modeling.settings import RuntimeSettings
from hyperrec.modeling.training_settings import TrainingSettings

if TYPE_CHECKING:
    from hyperrec.modeling.item_encoder import TextEncoder
    from hyperrec.models.base import Recommender

log = logging.getLogger(__name__)

Validator = Callable[["Recommender"], float]
MetricsCallback = Callable[[dict[str, float], int], None]
Step = Callable[[Any], tuple[torch.Tensor, int]]


class TrainingTimeout(ModelError):
    """Training ran past ``max_train_seconds``: a safety net tripped, not a budget (results would depend on
    the machine's load), so the run fails instead of keeping a partly trained model."""


class EarlyStopping:
    """Tracks the best value of a higher-is-better metric and says when patience is used up."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best: float | None = None
        self.bad_evaluations = 0

    def update(self, value: float) -> bool:
        """Record a value; True when it is a new best."""
        if (
            value is not None
            and not math.isnan(value)
            and (self.best is None or value > self.best + self.min_delta)
        ):
            self.best = float(value)
            self.bad_evaluations = 0
            return True
        self.bad_evaluations += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_evaluations >= self.patience


def state_to_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


@dataclass
class TrainResult:
    """What a training run did; also written into the model's config.json."""

    best_metric: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None
    epochs_run: int = 0
    steps: int = 0
    examples: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    validation_seconds: float = 0.0
    examples_per_second: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainResult:
        """Read a saved result; keys of older versions (e.g. ``stopped_by_time``) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class _Run:
    """One ``Trainer.fit`` call: what it trains and scores, and what it has done so far."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    step: Step
    device: torch.device
    use_autocast: bool
    recommender: Recommender
    invalidate: Callable[[], None] | None
    stopper: EarlyStopping
    deadline: float | None
    result: TrainResult = field(default_factory=TrainResult)
    best_state: dict[str, torch.Tensor] | None = None
    train_time: float = 0.0
    running_loss: float = 0.0
    running_n: int = 0


class Trainer:
    """Runs epochs of ``step(batch) -> (loss, n_examples)`` with the recipe of
    ``hyperrec.modeling.finetune``."""

    def __init__(self, settings: TrainingSettings, runtime: RuntimeSettings, *,
                 validate: Validator | None = None, on_metrics: MetricsCallback | None = None,
                 name: str = "model") -> None:
        self.settings, self.runtime = settings, runtime
        self.validate, self.on_metrics, self.name = validate, on_metrics, name

    def _emit(self, metrics: dict[str, float], step: int) -> None:
        if self.on_metrics is not None:
            try:
                self.on_metrics(metrics, step)
            except Exception:
                log.exception("on_metrics callback failed")

    def fit(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        recommender: Recommender,
        epoch_batches: Callable[[int], Iterable[Any]],
        step: Step,
        device: torch.device,
        steps_per_epoch: int | None = None,
        encoders: Sequence[TextEncoder] = (),
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        invalidate: Callable[[], None] | None = None,
    ) -> TrainResult:
        """Train ``module`` in place; return what happened. The best validated state is restored at the end.

        Args:
            module: what trains (every parameter ``step`` updates); its state is what is kept and restored.
            optimizer: built over ``module``'s parameters (``finetune.build_optimizer``).
            recommender: what ``validate`` scores (its ``score`` must use ``module``).
            epoch_batches: ``epoch -> batches`` of that epoch, each handed to ``step``.
            step: ``batch -> (mean loss, number of examples)``.
            device: where the forward passes run (bf16 autocast on CUDA when the runtime asks for it).
            steps_per_epoch: length of an epoch, for the progress bar only.
            encoders: language models that follow ``unfreeze_schedule``.
            scheduler: stepped after every optimizer step.
            invalidate: drops the recommender's caches after weights change.

        Returns:
            Steps, examples, validation history and the best metric of the run.
        """
        s = self.settings
        run = _Run(module, optimizer, scheduler, step, device,
                   use_autocast=self.runtime.bf16_autocast and device.type == "cuda", recommender=recommender,
                   invalidate=invalidate, stopper=EarlyStopping(s.patience, s.min_delta),
                   deadline=time.perf_counter() + s.max_train_seconds if s.max_train_seconds else None)
        module.train()
        for epoch in range(s.max_epochs):
            self._unfreeze(encoders, epoch)
            stop = self._epoch(run, epoch, epoch_batches(epoch), steps_per_epoch)
            if not s.eval_every_steps and self._evaluate(run, epoch):
                run.result.stopped_early = True
                stop = True
            if stop:
                break
        return self._finish(run)

    def _unfreeze(self, encoders: Sequence[TextEncoder], epoch: int) -> None:
        """Apply the unfreeze schedule of ``epoch`` to every encoder; log when it changes."""
        schedule = self.settings.unfreeze_schedule
        n_top = layers_for_epoch(schedule, epoch)
        for encoder in encoders:
            trainable = apply_freezing(encoder, n_top)
            if epoch == 0 or n_top != layers_for_epoch(schedule, epoch - 1):
                log.info("%s epoch %d: %d top layers trainable (%d tensors)", self.name, epoch, n_top,
                         len(trainable))

    def _epoch(self, run: _Run, epoch: int, batches: Iterable[Any], steps_per_epoch: int | None) -> bool:
        """Train one epoch (up to ``max_steps_per_epoch`` steps); True when a mid-epoch validation stops."""
        from tqdm.auto import tqdm

        s = self.settings
        stop = False
        epoch_start = time.perf_counter()
        bar = tqdm(batches, total=steps_per_epoch, desc=f"{self.name} epoch {epoch}",
                   disable=not self.runtime.progress, leave=False)
        for steps_this_epoch, batch in enumerate(bar, start=1):
            self._train_step(run, batch)
            self._report_loss(run, bar)
            if (
                s.eval_every_steps
                and run.result.steps % s.eval_every_steps == 0
                and self._evaluate(run, epoch)
            ):
                stop = True
                run.result.stopped_early = True
            self._check_deadline(run, epoch)
            if stop or (s.max_steps_per_epoch and steps_this_epoch >= s.max_steps_per_epoch):
                break
        bar.close()
        run.result.epochs_run = epoch + 1
        log.debug("%s epoch %d took %.1fs", self.name, epoch, time.perf_counter() - epoch_start)
        return stop

    def _train_step(self, run: _Run, batch: Any) -> None:
        """Forward, backward, clip, optimizer and scheduler step; count the examples and the loss."""
        t0 = time.perf_counter()
        with autocast(run.device, run.use_autocast):
            loss, n_examples = run.step(batch)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_([p for p in run.module.parameters() if p.grad is not None],
                                     self.settings.grad_clip)
        run.optimizer.step()
        if run.scheduler is not None:
            run.scheduler.step()
        run.train_time += time.perf_counter() - t0
        run.result.steps += 1
        run.result.examples += n_examples
        run.running_loss += float(loss.detach()) * n_examples
        run.running_n += n_examples

    def _report_loss(self, run: _Run, bar: Any) -> None:
        """Every ``log_every_steps``: the mean loss since the last report, throughput and learning rate."""
        result = run.result
        if result.steps % self.settings.log_every_steps != 0:
            return
        mean = run.running_loss / max(run.running_n, 1)
        bar.set_postfix(loss=f"{mean:.4f}")
        self._emit({"train_loss": mean, "examples_per_second": result.examples / max(run.train_time, 1e-9),
                    "lr": float(run.optimizer.param_groups[0]["lr"])}, result.steps)
        run.running_loss, run.running_n = 0.0, 0

    def _check_deadline(self, run: _Run, epoch: int) -> None:
        s = self.settings
        if run.deadline is not None and time.perf_counter() > run.deadline:
            raise TrainingTimeout(
                f"{self.name}: training passed the max_train_seconds safety net ({s.max_train_seconds:g} s) "
                f"at epoch {epoch}, step {run.result.steps}; budgets are max_epochs/max_steps_per_epoch, so "
                f"raise the net or lower those")

    def _evaluate(self, run: _Run, epoch: int) -> bool:
        """Validate, keep the state when it is the best so far; True when patience is used up."""
        if self.validate is None:
            return False
        s, result = self.settings, run.result
        t0 = time.perf_counter()
        run.module.eval()
        if run.invalidate:
            run.invalidate()
        with torch.no_grad():
            value = float(self.validate(run.recommender))
        run.module.train()
        result.validation_seconds += time.perf_counter() - t0
        improved = run.stopper.update(value)
        if improved:
            self._keep_best(run, epoch, value)
        best = run.stopper.best
        result.history.append(
            {
                "epoch": float(epoch),
                "step": float(result.steps),
                f"val_{s.validation_metric}": value,
                "best": float(best) if best is not None else float("nan"),
            }
        )
        self._emit({f"val_{s.validation_metric}": value, "epoch": float(epoch)}, result.steps)
        log.info("%s epoch %d step %d: val %s %.5f%s", self.name, epoch, result.steps,
                 s.validation_metric, value, " (best)" if improved else "")
        return run.stopper.should_stop

    def _keep_best(self, run: _Run, epoch: int, value: float) -> None:
        """Hold the new best state in memory and, with ``checkpoint_dir``, write it and its metric there."""
        s, result = self.settings, run.result
        run.best_state = state_to_cpu(run.module)
        result.best_metric, result.best_epoch, result.best_step = value, epoch, result.steps
        if s.checkpoint_dir is not None:
            save_state(s.checkpoint_dir / "best.safetensors", run.best_state,
                       {"metric": value, "epoch": epoch, "step": result.steps})
            (s.checkpoint_dir / "best.json").write_text(json.dumps(
                {"metric": s.validation_metric, "value": value, "epoch": epoch, "step": result.steps}))

    def _finish(self, run: _Run) -> TrainResult:
        """Restore the best state, refresh the recommender's caches and report the run's totals."""
        result = run.result
        result.train_seconds = run.train_time
        result.examples_per_second = result.examples / max(run.train_time, 1e-9)
        if run.best_state is not None:
            run.module.load_state_dict(run.best_state)
        run.module.eval()
        if run.invalidate:
            run.invalidate()
        self._emit(
            {
                "train_seconds": run.train_time,
                "examples_per_second": result.examples_per_second,
                **({"best_val": result.best_metric} if result.best_metric is not None else {}),
            },
            result.steps,
        )
        return result


def data_parallel(module: nn.Module, loss: Callable[..., tuple[torch.Tensor, int]],
                  epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, ...]]], device: torch.device,
                  ) -> tuple[Step, Callable[[int], Iterable[Any]]]:
    """``(step, epoch_batches)`` for ``Trainer.fit``. Under ``torchrun`` (an initialized process group of more
    than one process, see ``hyperrec.modeling.distributed``) ``module`` is wrapped in DistributedDataParallel,
    so gradients are averaged across processes, and each process trains on its slice of every global batch;
    otherwise ``loss`` runs as it is.

    Args:
        module: the network to train.
        loss: ``loss(*batch) -> (loss, n_examples)`` on tensors on ``device``.
        epoch_batches: ``epoch -> batches``, each a tuple of tensors with one row per example.
        device: where the batches go.

    Returns:
        ``(step, epoch_batches)``.
    """
    from hyperrec.modeling import distributed

    def to_device(batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        return [x.to(device, non_blocking=True) for x in batch]

    if not distributed.is_distributed():
        return (lambda batch: loss(*to_device(batch))), epoch_batches
    ddp = distributed.wrap(module, loss, device)
    return (lambda batch: distributed.globally_weighted(*ddp(*to_device(batch)))), distributed.sharded(
        epoch_batches
    )
