"""Sampled softmax's logQ correction: a candidate's logit loses the log of its chance of being a
candidate, so popular items, which are in-batch negatives far more often, are not pushed down for it
(issue 9, catalogues too large for a full softmax)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hyperrec.modeling.next_item_loss import candidate_log_q, sampled_softmax_loss
from hyperrec.modeling.next_item_net import NextItemNet, target_shares
from hyperrec.modeling.next_item_text import ItemText
from hyperrec.modeling.settings import NextItemSettings

N_ITEMS = 30


def test_the_chance_of_being_a_candidate_counts_targets_and_uniform_negatives():
    share = torch.tensor([0.5, 0.01, 0.0])
    log_q = candidate_log_q(share, n_targets=10, n_negatives=4, n_items=100)
    uniform_missed = (1 - 1 / 100) ** 4
    expected = [1 - (1 - s) ** 10 * uniform_missed for s in (0.5, 0.01, 0.0)]
    np.testing.assert_allclose(log_q.numpy(), np.log(expected), rtol=1e-5)
    assert log_q[0] > log_q[1] > log_q[2] > -math.inf  # more popular, more often a candidate


def test_shares_are_each_items_part_of_the_train_events():
    shares = target_shares({"a": np.array([0, 1, 1]), "b": np.array([1, 3])}, 5, torch.device("cpu"))
    np.testing.assert_allclose(shares.numpy(), [0.2, 0.6, 0.0, 0.2, 0.0])


def _loss(net, inputs, share, seed=0):
    return sampled_softmax_loss(net, ItemText(), inputs[:, :-1], inputs[:, 1:], torch.zeros(len(inputs),
                                dtype=torch.long), torch.Generator().manual_seed(seed), n_negatives=8,
                                unseen=None, target_share=share)[0]


@pytest.fixture
def net_and_batch():
    torch.manual_seed(0)
    net = NextItemNet(N_ITEMS, None, NextItemSettings(d_model=16, n_heads=2, n_layers=1, max_seq_len=8))
    net.eval()  # no dropout: two calls see the same logits
    inputs = torch.randint(0, N_ITEMS, (4, 6), generator=torch.Generator().manual_seed(1))
    return net, inputs


def test_equal_shares_shift_every_logit_alike_and_leave_the_loss_unchanged(net_and_batch):
    net, inputs = net_and_batch
    equal = torch.full((N_ITEMS,), 1 / N_ITEMS)
    assert torch.allclose(_loss(net, inputs, equal), _loss(net, inputs, None), atol=1e-6)


def test_an_item_with_most_train_events_gets_its_logit_discounted_against_rarer_candidates(net_and_batch):
    net, inputs = net_and_batch
    skewed = torch.full((N_ITEMS,), 0.1 / (N_ITEMS - 1))
    skewed[int(inputs[0, 1])] = 0.9  # one item takes most of the train events
    assert not torch.allclose(_loss(net, inputs, skewed), _loss(net, inputs, None))
