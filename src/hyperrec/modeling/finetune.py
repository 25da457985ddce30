"""The fine-tuning recipe shared by every learned model.

- init from a pretrained language model, lower layers frozen, top layers unfrozen on a schedule
  (``TrainingSettings.unfreeze_schedule``: epoch -> number of top layers that train);
- AdamW (fused when available) with parameter groups: pretrained layers at ``lm_learning_rate``, new layers and
  heads at ``learning_rate``; no weight decay on biases and norms; linear warm-up then linear decay;
- early stopping on a validation metric computed by an *injected* ``validate(recommender) -> float`` callable
  (the evaluation harness in production, a small local metric in tests), best state restored at the end and
  written to ``checkpoint_dir/best.safetensors`` on every improvement;
- budgets in epochs and steps only, so that the same seed and thread count give the same model whatever the
  machine's load; ``max_train_seconds`` is a safety net that *fails* the run (``TrainingTimeout``), never a
  budget that quietly shortens it;
- seeded, CUDA + bf16 autocast when available, torch threads from the config on CPU, tqdm bars, and an optional
  ``on_metrics(dict, step)`` callback (the pipeline layer forwards it to MLflow).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from hyperrec.errors import ModelError
from hyperrec.modeling.settings import RuntimeSettings, TrainingSettings

if TYPE_CHECKING:
    from hyperrec.modeling.item_encoder import TextEncoder
    from hyperrec.models.base import Recommender

log = logging.getLogger(__name__)

Validator = Callable[["Recommender"], float]
MetricsCallback = Callable[[dict[str, float], int], None]



class TrainingTimeout(ModelError):
    """Training ran past ``max_train_seconds``: a safety net tripped, not a budget (results would depend on
    the machine's load), so the run fails instead of keeping a partly trained model."""


_NO_DECAY = ("bias", "LayerNorm.weight", "layernorm.weight", "norm.weight", "ln", "position", "segment")


# --------------------------------------------------------------------------------------------- environment
def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA), and prefer torch's deterministic kernels (a warning, not an
    error, where an op has none) so that a seed fixes the weights, not just the metrics."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def configure_threads(threads: int | None) -> None:
    """torch.set_num_threads from the config (None leaves torch's default)."""
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def resolve_device(setting: str) -> torch.device:
    """auto -> cuda when available, else cpu; asking for cuda without one is an error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ModelError("modeling.runtime.device is 'cuda' but no CUDA device is available")
    return torch.device(setting)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when enabled; a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_runtime(runtime: RuntimeSettings) -> torch.device:
    """Seed, set threads, pick the device: the first thing every fit() does."""
    configure_threads(runtime.threads)
    seed_everything(runtime.seed)
    return resolve_device(runtime.device)


# --------------------------------------------------------------------------------------------- freezing
def layers_for_epoch(schedule: dict[int, int], epoch: int) -> int:
    """Number of top layers trainable at ``epoch`` (-1: everything incl. embeddings)."""
    current = 0
    for start, n_layers in sorted(schedule.items()):
        if start <= epoch:
            current = n_layers
    return current


def apply_freezing(encoder: TextEncoder, n_top: int) -> list[str]:
    """Freeze the encoder except its top ``n_top`` layers (-1: nothing frozen); return trainable names."""
    model = encoder.model
    layers = encoder.transformer_layers()
    unfreeze_all = n_top < 0 or n_top > len(layers)
    for param in model.parameters():
        param.requires_grad_(unfreeze_all)
    if not unfreeze_all and n_top > 0:
        for layer in layers[len(layers) - n_top:]:
            for param in layer.parameters():
                param.requires_grad_(True)
    if n_top != 0:
        encoder.modified = True
    return [name for name, p in model.named_parameters() if p.requires_grad]


# --------------------------------------------------------------------------------------------- optimizer
def _decays(name: str, param: nn.Parameter) -> bool:
    return param.ndim >= 2 and not any(token in name for token in _NO_DECAY)


def param_groups(
    lm_modules: Sequence[nn.Module],
    head_modules: Sequence[nn.Module],
    settings: TrainingSettings,
) -> list[dict[str, Any]]:
    """AdamW groups: pretrained LM params at lm_learning_rate, the rest at learning_rate; no decay on
    biases/norms/position tables. Parameters are included even while frozen (they get no gradient, so AdamW
    skips them) so that unfreezing later needs no new optimizer."""
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    for modules, lr, tag in ((lm_modules, settings.lm_learning_rate, "lm"),
                             (head_modules, settings.learning_rate, "head")):
        decay, no_decay = [], []
        for module in modules:
            for name, param in module.named_parameters():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                (decay if _decays(name, param) else no_decay).append(param)
        if decay:
            groups.append({"params": decay, "lr": lr, "weight_decay": settings.weight_decay, "name": f"{tag}"})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{tag}_no_decay"})
    return groups


def build_optimizer(groups: list[dict[str, Any]], settings: TrainingSettings,
                    device: torch.device) -> torch.optim.Optimizer:
    """AdamW; fused kernel when asked and supported on the device."""
    kwargs: dict[str, Any] = {}
    if settings.fused_adamw and device.type in ("cpu", "cuda"):
        kwargs["fused"] = True
    try:
        return torch.optim.AdamW(groups, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - older builds
        return torch.optim.AdamW(groups)


def warmup_schedule(optimizer: torch.optim.Optimizer, total_steps: int, settings: TrainingSettings
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over warmup_ratio * total_steps, then linear decay to 0 (or constant)."""
    warmup = round(settings.warmup_ratio * total_steps)
    total = max(total_steps, 1)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if not settings.linear_decay:
            return 1.0
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------------------------- early stopping
class EarlyStopping:
    """Tracks the best value of a higher-is-better metric and says when patience is used up."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best: float | None = None
        self.bad_evaluations = 0

    def update(self, value: float) -> bool:
        """Record a value; True when it is a new best."""
        if value is not None and not math.isnan(value) and (self.best is None or value > self.best + self.min_delta):
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


def save_state(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Write a state dict as safetensors (shared tensors cloned apart)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})


def load_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


# --------------------------------------------------------------------------------------------- the loop
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


class Trainer:
    """Runs epochs of ``step(batch) -> (loss, n_examples)`` with the recipe of this module."""

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
        step: Callable[[Any], tuple[torch.Tensor, int]],
        device: torch.device,
        steps_per_epoch: int | None = None,
        encoders: Sequence[TextEncoder] = (),
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        invalidate: Callable[[], None] | None = None,
    ) -> TrainResult:
        """Train ``module`` in place; return what happened. The best validated state is restored at the end.

        ``recommender`` is what ``validate`` scores (its ``score`` must use ``module``); ``invalidate`` drops
        the recommender's caches after weights change; ``encoders`` follow ``unfreeze_schedule``.
        """
        from tqdm.auto import tqdm

        s = self.settings
        result = TrainResult()
        stopper = EarlyStopping(s.patience, s.min_delta)
        best_state: dict[str, torch.Tensor] | None = None
        use_autocast = self.runtime.bf16_autocast and device.type == "cuda"
        deadline = time.perf_counter() + s.max_train_seconds if s.max_train_seconds else None
        train_time = 0.0
        running_loss, running_n = 0.0, 0

        def evaluate(epoch: int) -> bool:
            nonlocal best_state
            if self.validate is None:
                return False
            t0 = time.perf_counter()
            module.eval()
            if invalidate:
                invalidate()
            with torch.no_grad():
                value = float(self.validate(recommender))
            module.train()
            result.validation_seconds += time.perf_counter() - t0
            improved = stopper.update(value)
            if improved:
                best_state = state_to_cpu(module)
                result.best_metric, result.best_epoch, result.best_step = value, epoch, result.steps
                if s.checkpoint_dir is not None:
                    save_state(s.checkpoint_dir / "best.safetensors", best_state,
                               {"metric": value, "epoch": epoch, "step": result.steps})
                    (s.checkpoint_dir / "best.json").write_text(json.dumps(
                        {"metric": s.validation_metric, "value": value, "epoch": epoch, "step": result.steps}))
            record = {"epoch": float(epoch), "step": float(result.steps), f"val_{s.validation_metric}": value,
                      "best": float(stopper.best) if stopper.best is not None else float("nan")}
            result.history.append(record)
            self._emit({f"val_{s.validation_metric}": value, "epoch": float(epoch)}, result.steps)
            log.info("%s epoch %d step %d: val %s %.5f%s", self.name, epoch, result.steps,
                     s.validation_metric, value, " (best)" if improved else "")
            return stopper.should_stop

        module.train()
        stop = False
        for epoch in range(s.max_epochs):
            n_top = layers_for_epoch(s.unfreeze_schedule, epoch)
            for encoder in encoders:
                trainable = apply_freezing(encoder, n_top)
                if epoch == 0 or n_top != layers_for_epoch(s.unfreeze_schedule, epoch - 1):
                    log.info("%s epoch %d: %d top layers trainable (%d tensors)", self.name, epoch, n_top,
                             len(trainable))
            epoch_start = time.perf_counter()
            bar = tqdm(epoch_batches(epoch), total=steps_per_epoch, desc=f"{self.name} epoch {epoch}",
                       disable=not self.runtime.progress, leave=False)
            for steps_this_epoch, batch in enumerate(bar, start=1):
                t0 = time.perf_counter()
                with autocast(device, use_autocast):
                    loss, n_examples = step(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if s.grad_clip is not None:
                    nn.utils.clip_grad_norm_([p for p in module.parameters() if p.grad is not None], s.grad_clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                train_time += time.perf_counter() - t0
                result.steps += 1
                result.examples += n_examples
                running_loss += float(loss.detach()) * n_examples
                running_n += n_examples
                if result.steps % s.log_every_steps == 0:
                    mean = running_loss / max(running_n, 1)
                    bar.set_postfix(loss=f"{mean:.4f}")
                    self._emit({"train_loss": mean, "examples_per_second": result.examples / max(train_time, 1e-9),
                                "lr": float(optimizer.param_groups[0]["lr"])}, result.steps)
                    running_loss, running_n = 0.0, 0
                if s.eval_every_steps and result.steps % s.eval_every_steps == 0 and evaluate(epoch):
                    stop = True
                    result.stopped_early = True
                if deadline is not None and time.perf_counter() > deadline:
                    raise TrainingTimeout(
                        f"{self.name}: training passed the max_train_seconds safety net ({s.max_train_seconds:g} s) "
                        f"at epoch {epoch}, step {result.steps}; budgets are max_epochs/max_steps_per_epoch, so "
                        f"raise the net or lower those")
                if stop or (s.max_steps_per_epoch and steps_this_epoch >= s.max_steps_per_epoch):
                    break
            bar.close()
            result.epochs_run = epoch + 1
            log.debug("%s epoch %d took %.1fs", self.name, epoch, time.perf_counter() - epoch_start)
            if not s.eval_every_steps and evaluate(epoch):
                result.stopped_early = True
                stop = True
            if stop:
                break
        result.train_seconds = train_time
        result.examples_per_second = result.examples / max(train_time, 1e-9)
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        if invalidate:
            invalidate()
        self._emit({"train_seconds": train_time, "examples_per_second": result.examples_per_second,
                    **({"best_val": result.best_metric} if result.best_metric is not None else {})}, result.steps)
        return result


def data_parallel(module: nn.Module, loss: Callable[..., tuple[torch.Tensor, int]],
                  epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, ...]]], device: torch.device,
                  ) -> tuple[Callable[[Any], tuple[torch.Tensor, int]], Callable[[int], Iterable[Any]]]:
    """``(step, epoch_batches)`` for ``Trainer.fit``. Under ``torchrun`` (an initialized process group of more
    than one process, see ``hyperrec.modeling.distributed``) ``module`` is wrapped in DistributedDataParallel,
    so gradients are averaged across processes, and each process trains on its slice of every global batch;
    otherwise ``loss`` runs as it is."""
    from hyperrec.modeling import distributed

    def to_device(batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        return [x.to(device, non_blocking=True) for x in batch]

    if not distributed.is_distributed():
        return (lambda batch: loss(*to_device(batch))), epoch_batches
    ddp = distributed.wrap(module, loss, device)
    return (lambda batch: distributed.globally_weighted(*ddp(*to_device(batch)))), distributed.sharded(epoch_batches)


def batched(indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]


def env_threads_hint() -> int:
    """Cores this process may use (for logs)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1
