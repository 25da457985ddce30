"""Text-only scoring: items without train events and ID-embedding dropout share one path and one scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from test_modeling_next_item import N_ITEMS, accuracy_at_1, small_settings, text_embeddings

from hyperrec.modeling.next_item import NextItemRecommender
from hyperrec.modeling.next_item_net import NextItemNet
from hyperrec.modeling.settings import NextItemSettings, RuntimeSettings
from hyperrec.models.base import ScoringBatch


def _net(id_dropout: float) -> NextItemNet:
    torch.manual_seed(0)
    net = NextItemNet(10, 8, NextItemSettings(d_model=16, n_heads=2, max_seq_len=5, id_dropout=id_dropout))
    with torch.no_grad():
        net.text_table.copy_(torch.randn(10, 8))
        net.item_bias.copy_(torch.arange(10, dtype=torch.float32))
        net.cold_bias.fill_(-3.0)
    net.text_only[7] = True
    return net


def test_text_only_items_have_no_id_part_and_the_shared_bias() -> None:
    net = _net(0.0)
    vectors, biases = net.item_vectors(), net.biases()
    text_part = net.text_proj(net.text_table)
    torch.testing.assert_close(vectors[7], text_part[7])
    torch.testing.assert_close(vectors[3], text_part[3] + net.id_emb.weight[3])
    assert float(biases[7].detach()) == -3.0 and float(biases[3].detach()) == 3.0
    idx = torch.tensor([7, 3])
    torch.testing.assert_close(net.item_vectors(idx), vectors[idx])
    torch.testing.assert_close(net.biases(idx), biases[idx])


def test_id_dropout_draws_a_seeded_share_and_always_keeps_unseen_items_text_only() -> None:
    net = _net(0.5)
    masks = [net.text_only_mask(generator=torch.Generator().manual_seed(s)) for s in range(200)]
    assert all(bool(m[7]) for m in masks)
    share = torch.stack(masks).float().mean(0)
    assert abs(float(share[:7].mean()) - 0.5) < 0.05
    again = net.text_only_mask(generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, masks[0])
    assert torch.equal(net.text_only_mask(), net.text_only)  # no generator (scoring): no dropout
    assert _net(0.5).id_dropout == 0.5
    id_only = NextItemNet(10, None, NextItemSettings(use_text=False, d_model=16, n_heads=2, id_dropout=0.5))
    assert id_only.id_dropout == 0.0  # nothing to fall back on without text


def test_id_dropout_trains_the_text_only_path_a_cold_item_then_ranks_at_the_top(cyclic_data, runtime,
                                                                                encoder_settings) -> None:
    """Item 23 never occurs in training. With ID dropout its shared bias is trained (without, text-only items
    are never in the softmax and it stays 0). Given the text of each user's true next item, the cold item
    ranks right behind or beside that warm item."""
    histories = cyclic_data.histories(("train",))
    targets = dict(
        zip(cyclic_data.split("validation")["user_id"], cyclic_data.split("validation")["item_idx"])
    )
    users = sorted(histories)

    def fitted(id_dropout: float) -> NextItemRecommender:
        model = NextItemRecommender(small_settings(id_dropout=id_dropout), item_encoder=encoder_settings,
                                    runtime=runtime)
        model.fit(cyclic_data, validate=lambda m: accuracy_at_1(m, cyclic_data),
                  item_embeddings=text_embeddings(N_ITEMS))
        assert model.net is not None and bool(model.net.text_only[23]) and int(model.net.text_only.sum()) == 1
        return model

    assert float(fitted(0.0).net.cold_bias.detach()) == 0.0
    model = fitted(0.5)
    assert float(model.net.cold_bias.detach()) != 0.0
    ranks = []
    for user in users:
        with torch.no_grad():
            model.net.text_table[23] = model.net.text_table[int(targets[user])]
        scores = model.score(ScoringBatch([user], [histories[user]]))[0]
        ranks.append(int((scores > scores[23]).sum()))
    assert np.mean(np.array(ranks) < 3) >= 0.8


def test_same_seed_and_threads_give_identical_weights(cyclic_data, encoder_settings) -> None:
    """Determinism: budgets are epochs and steps, so two runs match bit for bit (here with 2 threads)."""
    runtime = RuntimeSettings(threads=2, device="cpu", progress=False, seed=11)
    settings = small_settings(
        id_dropout=0.3, training=small_settings().training.model_copy(update={"max_epochs": 4})
    )
    runs = []
    for _ in range(2):
        model = NextItemRecommender(settings, item_encoder=encoder_settings, runtime=runtime)
        model.fit(
            cyclic_data,
            validate=lambda m: float(m.score(ScoringBatch(["u001"], [np.arange(5)]))[0, 5]),
            item_embeddings=text_embeddings(N_ITEMS),
        )
        assert model.net is not None and model.train_result is not None
        runs.append((model.net.state_dict(), model.train_result.history))
    (first, history_a), (second, history_b) = runs
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert history_a == history_b


def test_models_saved_before_text_only_scoring_still_load(cyclic_data, runtime, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = NextItemRecommender(small_settings(training=small_settings().training.model_copy(
        update={"max_epochs": 1})), runtime=runtime)
    model.fit(cyclic_data, validate=lambda m: 0.0, item_embeddings=text_embeddings(N_ITEMS))
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    state = {k: v for k, v in load_file(str(weights)).items() if k not in ("text_only", "cold_bias")}
    save_file(state, str(weights))
    loaded = NextItemRecommender.load(tmp_path / "m")
    assert loaded.net is not None and not bool(loaded.net.text_only.any())
