"""Dropping dead padding columns from a training batch changes its cost, never its loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperrec.modeling.batching import trim_left_padding
from hyperrec.modeling.next_item import IDOnlyNextItemRecommender
from hyperrec.modeling.next_item_net import NextItemNet
from hyperrec.modeling.next_item_windows import left_pad
from hyperrec.modeling.settings import NextItemSettings

PAD = 20


def test_columns_that_are_padding_in_every_row_are_dropped_but_a_first_target_is_kept() -> None:
    padded = torch.from_numpy(left_pad([np.array([3, 4, 5]), np.array([7, 8])], 7, PAD))
    inputs, targets = trim_left_padding(padded[:, :-1], padded[:, 1:], PAD)
    # the 3-item window needs 3 columns: its first item is a target read from an empty (padded) prefix
    assert inputs.tolist() == [[PAD, 3, 4], [PAD, PAD, 7]]
    assert targets.tolist() == [[3, 4, 5], [PAD, 7, 8]]


def test_a_batch_without_padding_is_returned_whole() -> None:
    full = torch.arange(12).reshape(2, 6)
    inputs, targets = trim_left_padding(full[:, :-1], full[:, 1:], PAD)
    assert inputs.shape == (2, 5) and targets.shape == (2, 5)


@pytest.mark.parametrize("loss", ["full_softmax", "sampled_softmax"])
def test_the_loss_of_a_trimmed_batch_equals_the_loss_of_the_padded_one(loss: str) -> None:
    torch.manual_seed(0)
    settings = NextItemSettings(d_model=8, n_heads=1, max_seq_len=10, dropout=0.0, use_text=False, loss=loss,
                                n_sampled_negatives=5, history_penalty="learned")
    model = IDOnlyNextItemRecommender(settings)
    model.net = NextItemNet(PAD, None, settings).eval()
    padded = torch.from_numpy(
        left_pad([np.array([1, 2, 3, 4]), np.array([5, 6]), np.array([9, 2, 9])], 11, PAD)
    )
    inputs, targets = padded[:, :-1], padded[:, 1:]
    segments = torch.zeros(3, dtype=torch.long)
    whole, n_whole = model._loss(inputs, targets, segments, torch.Generator().manual_seed(1))
    trimmed, n_trimmed = model._loss(*trim_left_padding(inputs, targets, PAD), segments,
                                     torch.Generator().manual_seed(1))
    assert n_whole == n_trimmed == 4 + 2 + 3  # every item of each window is a target, its first one too
    assert torch.allclose(whole, trimmed, atol=1e-6)
