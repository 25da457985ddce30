"""The text-ID alignment term of the next-item model: it rewards a text projection that lands on its own
item's ID embedding, trains both views, and leaves models without text untouched."""

from __future__ import annotations

import numpy as np
import torch
from test_modeling_next_item import N_ITEMS, small_settings, text_embeddings

from hyperrec.modeling.next_item import NextItemRecommender
from hyperrec.modeling.next_item_net import NextItemNet
from hyperrec.modeling.text_alignment import text_id_alignment_loss
from hyperrec.modeling.validation import local_validator
from hyperrec.models.base import ScoringBatch


def net_with_text(seed: int = 0) -> NextItemNet:
    torch.manual_seed(seed)
    net = NextItemNet(N_ITEMS, 16, small_settings())
    net.text_table.copy_(torch.from_numpy(text_embeddings(N_ITEMS)))
    return net


def loss_of(net: NextItemNet, items: list[int]) -> torch.Tensor:
    targets = torch.tensor([items + [net.pad]])
    return text_id_alignment_loss(net, targets, torch.Generator().manual_seed(0), max_items=512,
                                  temperature=0.1)


def test_aligned_views_score_a_lower_loss_than_unrelated_ones():
    net = net_with_text()
    items = list(range(12))
    unrelated = loss_of(net, items)
    with torch.no_grad():  # each item's ID embedding = its projected text
        net.id_emb.weight.copy_(net.text_proj(net.text_table))
    aligned = loss_of(net, items)
    assert aligned < 0.1 * unrelated


def test_the_loss_trains_the_text_projection_and_the_id_embeddings_of_the_batch_items_only():
    net = net_with_text()
    loss_of(net, [1, 2, 3, 4]).backward()
    assert net.text_proj.weight.grad is not None and net.text_proj.weight.grad.abs().sum() > 0
    touched = net.id_emb.weight.grad.abs().sum(dim=1) > 0
    assert touched.nonzero().flatten().tolist() == [1, 2, 3, 4]


def test_items_scored_from_text_alone_and_batches_of_one_item_are_left_out():
    net = net_with_text()
    net.text_only[[1, 2]] = True
    assert loss_of(net, [1, 2]) == 0
    assert loss_of(net, [5]) == 0
    assert loss_of(net, [1, 5, 6]) > 0


def test_a_fit_with_alignment_differs_and_the_id_only_model_ignores_the_weight(cyclic_data, runtime,
                                                                               encoder_settings):
    training = small_settings().training.model_copy(update={"max_epochs": 3})
    batch = ScoringBatch(["u000"], [np.array([1, 2, 3])])

    def scores(**overrides) -> np.ndarray:
        settings = small_settings(training=training, **overrides)
        model = NextItemRecommender(settings, item_encoder=encoder_settings, runtime=runtime)
        embeddings = text_embeddings(N_ITEMS) if overrides.get("use_text", True) else None
        model.fit(cyclic_data, validate=local_validator(cyclic_data), item_embeddings=embeddings)
        return model.score(batch)

    assert not np.array_equal(scores(text_id_alignment=0.0), scores(text_id_alignment=1.0))
    np.testing.assert_array_equal(scores(use_text=False, text_id_alignment=0.0),
                                  scores(use_text=False, text_id_alignment=1.0))
