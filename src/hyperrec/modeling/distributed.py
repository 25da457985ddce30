"""Training that outgrows one machine: fine-tuning under ``torchrun`` with DistributedDataParallel.

The same entry point runs everywhere: ``hyperrec fine-tune`` on one process, or
``torchrun --nproc_per_node N $(command -v hyperrec) fine-tune ...`` on N processes of one machine, or a
Kubeflow Training Operator PyTorchJob (manifests/training/pytorchjob.yaml) across GPU nodes, which sets the
same ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` variables that torchrun sets.

- ``session()`` starts the process group when those variables say there is more than one process (gloo on
  CPU, nccl on CUDA) and ends it afterwards; outside torchrun it does nothing.
- ``wrap(module, loss, device)`` puts a loss function behind DistributedDataParallel: the models compute their
  loss through helper methods rather than ``forward``, so a thin module whose ``forward`` is that loss lets
  DDP see every call and average the gradients of ``module``'s parameters.
- ``sharded(epoch_batches)`` gives process r rows r, r+N, r+2N... of every global batch, so N processes take
  the same number of steps as one process, on the same global batches; ``globally_weighted`` scales each
  process's mean loss by its share of the batch's predicted positions, so that the averaged gradient is the
  single-process gradient of the whole batch (exactly, up to float rounding, with a full softmax).

Every process validates the same synchronized weights, so early stopping decides the same everywhere; only
the main process (rank 0) writes models and tracking records.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)

#: How long a process waits for the others at start-up and at every collective before failing loudly.
TIMEOUT = timedelta(minutes=30)


def env_world_size() -> int:
    """Processes torchrun (or a PyTorchJob) started: WORLD_SIZE, 1 when unset."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """True on the process that writes models and tracking records (rank 0, or the only process)."""
    return rank() == 0


@contextlib.contextmanager
def session(device_type: str | None = None) -> Iterator[bool]:
    """Start the process group under torchrun (yields whether distributed); a no-op for one process.

    Args:
        device_type: ``"cuda"`` (NCCL) or ``"cpu"`` (gloo); None: CUDA when available.

    Yields:
        Whether this process trains distributed.
    """
    if env_world_size() <= 1 or is_distributed():
        yield is_distributed()
        return
    cuda = (device_type or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=TIMEOUT)
    log.info("distributed training: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(),
             dist.get_backend())
    try:
        yield True
    finally:
        dist.destroy_process_group()


class _LossModule(nn.Module):
    """``forward(*batch) = loss(*batch)``; owns ``module`` so that DDP tracks its parameters."""

    def __init__(self, module: nn.Module, loss: Callable[..., tuple[torch.Tensor, int]]) -> None:
        super().__init__()
        self.module = module
        self._loss = loss

    def forward(self, *batch: torch.Tensor) -> tuple[torch.Tensor, int]:
        return self._loss(*batch)


def wrap(module: nn.Module, loss: Callable[..., tuple[torch.Tensor, int]],
         device: torch.device) -> nn.Module:
    """``loss`` behind DistributedDataParallel over ``module``'s parameters (see the module docstring)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else None
    )
    # Some parameters get no gradient in a step (e.g. a frozen encoder, an unused segment table): find them.
    return DistributedDataParallel(_LossModule(module, loss), device_ids=ids, find_unused_parameters=True)


def globally_weighted(loss: torch.Tensor, n_examples: int) -> tuple[torch.Tensor, int]:
    """The loss to back-propagate so that DDP's gradient average equals one process's mean over the whole
    batch: each process's mean loss weighs ``world * n_local / n_global`` (shards hold unequal numbers of
    predicted positions); returns it with the batch's global example count."""
    counts = torch.tensor([float(n_examples)])
    dist.all_reduce(counts)
    total = float(counts.item())
    return loss * (dist.get_world_size() * n_examples / max(total, 1.0)), int(total)


def all_values(values: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor's values from every process, concatenated in rank order; the tensor itself outside
    torchrun. A loss term over the whole global batch (the text-ID alignment) then sees the same items in each
    process, as one process does."""
    if not is_distributed():
        return values
    size = torch.tensor([values.numel()], device=values.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    padded = values.new_zeros(max(counts))
    padded[: values.numel()] = values
    parts = [torch.zeros_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)])


def sharded(
    epoch_batches: Callable[[int], Iterable[tuple[Any, ...]]],
) -> Callable[[int], Iterator[tuple[Any, ...]]]:
    """Each process's slice of every global batch; a batch with fewer rows than processes is skipped by all.

    Args:
        epoch_batches: ``epoch -> global batches``, each a tuple of parts with one row per example.

    Returns:
        ``epoch -> batches`` of this process: every world-size-th row, from its rank on.
    """
    world, me = dist.get_world_size(), dist.get_rank()

    def batches(epoch: int) -> Iterator[tuple[Any, ...]]:
        for batch in epoch_batches(epoch):
            if len(batch[0]) < world:
                continue
            yield tuple(part[me::world] for part in batch)

    return batches
