"""Training examples of the next-item model: each user's train items cut into left-padded windows.

A window of ``max_seq_len + 1`` items gives ``max_seq_len`` inputs and, shifted by one, their next-item
targets; consecutive windows of a long history start ``window_stride`` items apart, so every target is
covered. Every epoch draws a seeded order of the windows (and, for order-free data, a seeded order of every
user's items before the windows are cut).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from hyperrec.errors import ModelError
from hyperrec.modeling.batching import trim_left_padding
from hyperrec.modeling.settings import NextItemSettings


def sequence_windows(sequence: np.ndarray, max_len: int, stride: int) -> list[np.ndarray]:
    """Chunks of up to max_len + 1 items covering every next-item target of the sequence."""
    out = []
    end = len(sequence)
    while end >= 2:
        out.append(sequence[max(0, end - max_len - 1):end])
        end -= stride
    return out


def left_pad(rows: list[np.ndarray], length: int, pad: int) -> np.ndarray:
    """(len(rows), length) int64 array: each row's last ``length`` items, right-aligned, ``pad`` before."""
    out = np.full((len(rows), length), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        row = row[-length:]
        if len(row):
            out[i, length - len(row):] = row
    return out


def training_windows(histories: dict[str, np.ndarray], users: list[str], n_items: int, s: NextItemSettings,
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[str]]:
    """The training windows of ``users``.

    Args:
        histories: each user's train item indices in time order.
        users: whose windows, in this order.
        n_items: catalogue size (also the pad index); indices outside [0, n_items) are dropped.
        s: the settings (``max_seq_len``, ``window_stride``).
        rng: when given, every user's items are first put in a random order (the count of windows per user
            does not change).

    Returns:
        Left-padded (n_windows, max_seq_len + 1) windows, and each window's user.
    """
    stride = s.window_stride or s.max_seq_len
    windows, window_users = [], []
    for user in users:
        seq = histories[user]
        seq = seq[(seq >= 0) & (seq < n_items)]
        if rng is not None:
            seq = rng.permutation(seq)
        for w in sequence_windows(seq, s.max_seq_len, stride):
            windows.append(w)
            window_users.append(user)
    if not windows:
        raise ModelError("no training sequences: every user needs at least 2 train interactions")
    return left_pad(windows, s.max_seq_len + 1, n_items), window_users


class TrainingWindows:
    """The windows of every train user, with each window's segment, batched in a seeded order per epoch.

    ``segment_index(users)`` gives each window user's segment (the model's index space); ``seed`` fixes the
    order of the batches (and of the items of order-free data) of every epoch.
    """

    def __init__(self, histories: dict[str, np.ndarray], n_items: int, settings: NextItemSettings,
                 segment_index: Callable[[list[str]], np.ndarray], seed: int) -> None:
        self.histories, self.n_items, self.settings = histories, n_items, settings
        self.users = sorted(histories)
        self._rng = np.random.default_rng(seed)
        padded, window_users = training_windows(histories, self.users, n_items, settings)
        self.inputs, self.targets = torch.from_numpy(padded[:, :-1]), torch.from_numpy(padded[:, 1:])
        self.segments = torch.from_numpy(segment_index(window_users))
        self.steps_per_epoch = settings.training.steps_per_epoch(len(window_users))

    def __len__(self) -> int:
        return len(self.segments)

    def n_targets(self) -> int:
        """Target events over all windows (positions that are not padding)."""
        return int((self.targets != self.n_items).sum())

    def epoch_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The batches of one epoch, in a fresh seeded order.

        Args:
            epoch: unused: the order comes from the seeded generator, which every epoch advances.

        Yields:
            (inputs, targets, segments): (B, L) item indices with all-padding columns trimmed, (B,) segments.
        """
        inputs, targets = self.inputs, self.targets
        if self.settings.sequence_order == "shuffled":  # order-free: a fresh order of every user's items
            shuffled, _ = training_windows(self.histories, self.users, self.n_items, self.settings, self._rng)
            inputs, targets = torch.from_numpy(shuffled[:, :-1]), torch.from_numpy(shuffled[:, 1:])
        order = self._rng.permutation(len(self))
        batch_size = self.settings.training.batch_size
        for start in range(0, len(self), batch_size):
            idx = torch.from_numpy(order[start:start + batch_size])
            yield *trim_left_padding(inputs[idx], targets[idx], self.n_items), self.segments[idx]
