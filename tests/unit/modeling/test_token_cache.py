"""Token-state cache: the frozen lower layers run once, the top layers train with the recommender."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from test_modeling_next_item import small_settings

from hyperrec.errors import ModelError
from hyperrec.modeling.finetune import apply_freezing
from hyperrec.modeling.item_encoder import TextEncoder, item_texts
from hyperrec.modeling.next_item import NextItemRecommender
from hyperrec.modeling.settings import RuntimeSettings
from hyperrec.modeling.token_cache import TokenStateCache, cached_encoder, live_text_table
from hyperrec.models.base import ScoringBatch

TEXTS = [
    "love story (1990). Genres: drama",
    "war",
    "night city. Genres: action, horror. Tags: girl, boy, house",
    "the world of time and love and war in the city at night",
    "a boy",
]


@pytest.fixture
def encoder(tiny_bert_path: Path) -> TextEncoder:
    return TextEncoder(tiny_bert_path, max_length=24).eval()


@pytest.mark.parametrize("n_top", [1, 2])
def test_cached_states_through_the_top_layers_equal_the_full_forward(encoder, n_top: int) -> None:
    cache = TokenStateCache(encoder, TEXTS, n_top, batch_size=2)
    full = encoder(**encoder.tokenize(TEXTS)).detach()
    assert cache.states.shape[0] == int(encoder.tokenize(TEXTS)["attention_mask"].sum())  # no padding stored
    torch.testing.assert_close(cache.encode_all(), full, atol=1e-5, rtol=1e-5)
    idx = torch.tensor([3, 0])
    torch.testing.assert_close(cache.encode(idx).detach(), full[idx], atol=1e-5, rtol=1e-5)


def test_only_the_unfrozen_top_layer_receives_gradients(encoder) -> None:
    cache = TokenStateCache(encoder, TEXTS, 1)
    apply_freezing(encoder, 1)
    assert cache.trains()
    cache.encode(torch.tensor([0, 2, 4])).pow(2).sum().backward()
    top, bottom = encoder.transformer_layers()[-1], encoder.transformer_layers()[0]
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in top.parameters())
    assert all(p.grad is None for p in bottom.parameters())
    assert all(p.grad is None for m in encoder.embedding_modules() for p in m.parameters())


def test_live_rows_carry_gradients_and_are_written_back(encoder) -> None:
    cache = TokenStateCache(encoder, TEXTS, 1)
    apply_freezing(encoder, 1)
    table = torch.zeros(len(TEXTS), encoder.dim)
    live = live_text_table(cache, table, torch.tensor([4, 1, 4]), n_live=8, generator=torch.Generator())
    assert live.requires_grad and not table.requires_grad
    torch.testing.assert_close(table[[1, 4]], live[[1, 4]].detach())
    assert float(table[[0, 2, 3]].abs().sum()) == 0.0
    drawn = live_text_table(cache, torch.zeros_like(table), torch.arange(5), n_live=2,
                            generator=torch.Generator().manual_seed(0))
    assert int((drawn.detach().abs().sum(1) > 0).sum()) == 2


def test_schedule_sets_the_cached_depth(encoder) -> None:
    assert cached_encoder(encoder, TEXTS, {0: 0, 2: 1}).n_top == 1
    assert cached_encoder(encoder, TEXTS, {0: 1, 1: -1}).n_top == 2
    with pytest.raises(ModelError):
        cached_encoder(encoder, TEXTS, {0: 0})


def _cached_settings(max_epochs: int = 3):
    training = small_settings().training.model_copy(update={
        "max_epochs": max_epochs, "unfreeze_schedule": {0: 0, 1: 1}, "lm_learning_rate": 1e-3})
    return small_settings(loss="full_softmax", finetune_item_encoder=True, live_items_per_step=6,
                          training=training)


def test_next_item_trains_the_top_layer_over_the_cache(cyclic_data, runtime, encoder_settings,
                                                       tmp_path: Path) -> None:
    pretrained = TextEncoder(encoder_settings.model_path, max_length=encoder_settings.max_length)
    model = NextItemRecommender(_cached_settings(), item_encoder=encoder_settings, runtime=runtime)
    epochs = itertools.count()
    model.fit(cyclic_data, validate=lambda m: float(next(epochs)))  # every epoch is the best so far
    assert model.encoder is not None and model.net is not None
    trained, before = model.encoder.transformer_layers(), pretrained.transformer_layers()
    assert not torch.equal(trained[-1].output.dense.weight, before[-1].output.dense.weight)
    assert torch.equal(trained[0].output.dense.weight, before[0].output.dense.weight)
    # what scoring uses is exactly the adapted encoder's output for every item
    texts = item_texts(cyclic_data.items, max_tags=encoder_settings.max_tags)
    torch.testing.assert_close(model.net.text_table, model.encoder.eval()(**model.encoder.tokenize(texts)),
                               atol=1e-5, rtol=1e-5)
    batch = ScoringBatch(["u002"], [np.array([1, 2, 3])])
    model.save(tmp_path / "m")
    np.testing.assert_allclose(NextItemRecommender.load(tmp_path / "m").score(batch), model.score(batch),
                               rtol=1e-5, atol=1e-5)


def test_two_runs_with_the_same_seed_and_threads_are_identical(cyclic_data, encoder_settings) -> None:
    runtime = RuntimeSettings(threads=2, device="cpu", progress=False, seed=5)
    runs = []
    for _ in range(2):
        model = NextItemRecommender(
            _cached_settings(max_epochs=2), item_encoder=encoder_settings, runtime=runtime
        )
        model.fit(
            cyclic_data, validate=lambda m: float(m.score(ScoringBatch(["u001"], [np.arange(5)]))[0, 7])
        )
        assert model.net is not None and model.encoder is not None and model.train_result is not None
        runs.append(({**model.net.state_dict(), **model.encoder.state_dict()}, model.train_result.history))
    (first, history_a), (second, history_b) = runs
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert history_a == history_b
