"""The fine-tuning recipe shared by every learned model (the loop that applies it: ``modeling.trainer``).

- init from a pretrained language model, lower layers frozen, top layers unfrozen on a schedule
  (``TrainingSettings.unfreeze_schedule``: epoch -> number of top layers that train);
- AdamW (fused when available) with parameter groups: pretrained layers at ``lm_learning_rate``, new layers
  and heads at ``learning_rate``; no weight decay on biases and norms; linear warm-up then linear decay;
- seeded, CUDA + bf16 autocast when available, torch threads from the config on CPU, so that the same seed
  and thread count give the same model whatever the machine's load;
- weights stored as safetensors.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from hyperrec.errors import ModelError
from hyperrec.modeling.settings import RuntimeSettings
from hyperrec.modeling.training_settings import TrainingSettings

if TYPE_CHECKING:
    from hyperrec.modeling.item_encoder import TextEncoder

_NO_DECAY = ("bias", "LayerNorm.weight", "layernorm.weight", "norm.weight", "ln", "position", "segment")


# --------------------------------------------------------------------------------------------- environment
def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA), and prefer torch's deterministic kernels (a warning, not
    an error, where an op has none) so that a seed fixes the weights, not just the metrics."""
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
    """Freeze the encoder except its top ``n_top`` layers (-1: nothing frozen); return trainable names.

    Args:
        encoder: the encoder to freeze; marked modified unless ``n_top`` is 0.
        n_top: top layers left trainable; -1 (or more than there are): everything; 0: nothing.

    Returns:
        The names of the parameters that stay trainable.
    """
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
    skips them) so that unfreezing later needs no new optimizer.

    Args:
        lm_modules: the pretrained modules (the text encoders).
        head_modules: the modules trained from scratch; a parameter already in ``lm_modules`` is not repeated.
        settings: the learning rates and weight decay.

    Returns:
        Up to four groups (``lm``, ``lm_no_decay``, ``head``, ``head_no_decay``), empty ones left out.
    """
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
            groups.append(
                {"params": decay, "lr": lr, "weight_decay": settings.weight_decay, "name": f"{tag}"}
            )
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
    """Linear warm-up over warmup_ratio * total_steps, then linear decay to 0 (or constant).

    Args:
        optimizer: the optimizer whose learning rates the schedule scales.
        total_steps: optimizer steps of the whole run.
        settings: ``warmup_ratio`` and ``linear_decay``.

    Returns:
        A scheduler to step once per optimizer step.
    """
    warmup = round(settings.warmup_ratio * total_steps)
    total = max(total_steps, 1)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if not settings.linear_decay:
            return 1.0
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------------------------- weights
def save_state(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Write a state dict as safetensors (shared tensors cloned apart)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})


def load_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))
