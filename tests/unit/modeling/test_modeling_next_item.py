"""The next-item model: learns a sequence pattern, scores the whole catalogue, cold items, save/load,
seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from modeling_fixtures import write_prepared

from hyperrec.errors import ModelError
from hyperrec.modeling.next_item import NextItemRecommender
from hyperrec.modeling.next_item_loss import history_pairs
from hyperrec.modeling.next_item_net import NextItemNet
from hyperrec.modeling.next_item_windows import sequence_windows
from hyperrec.modeling.settings import NextItemSettings
from hyperrec.modeling.training_settings import TrainingSettings
from hyperrec.modeling.validation import local_validator
from hyperrec.models.base import ScoringBatch

N_ITEMS = 24


def small_settings(**overrides) -> NextItemSettings:
    training = TrainingSettings(max_epochs=40, batch_size=16, learning_rate=5e-3, weight_decay=0.0,
                                warmup_ratio=0.0, linear_decay=False, unfreeze_schedule={0: 0}, patience=40,
                                max_train_seconds=None)
    values = {
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "max_seq_len": 8,
        "dropout": 0.0,
        "training": training,
    }
    values.update(overrides)
    return NextItemSettings(**values)


def text_embeddings(n: int, dim: int = 16, seed: int = 3) -> np.ndarray:
    emb = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def accuracy_at_1(model: NextItemRecommender, data) -> float:
    histories = data.histories(("train",))
    targets = dict(zip(data.split("validation")["user_id"], data.split("validation")["item_idx"]))
    users = sorted(histories)
    scores = model.score(ScoringBatch(users, [histories[u] for u in users]))
    return float(np.mean([scores[i].argmax() == targets[u] for i, u in enumerate(users)]))


@pytest.fixture
def fitted_lm(cyclic_data, runtime, encoder_settings) -> NextItemRecommender:
    model = NextItemRecommender(small_settings(), item_encoder=encoder_settings, runtime=runtime)
    # unmasked next-item accuracy: masking train items would make this cycle trivially easy
    model.fit(
        cyclic_data,
        validate=lambda m: accuracy_at_1(m, cyclic_data),
        item_embeddings=text_embeddings(N_ITEMS),
    )
    return model


def test_windows_cover_every_target() -> None:
    seq = np.arange(23)
    windows = sequence_windows(seq, max_len=8, stride=8)
    targets = sorted({int(x) for w in windows for x in w[1:]})
    assert targets == list(range(1, 23))
    assert all(len(w) <= 9 for w in windows)


def test_lm_model_learns_a_deterministic_sequence(fitted_lm, cyclic_data) -> None:
    assert accuracy_at_1(fitted_lm, cyclic_data) >= 0.9
    result = fitted_lm.train_result
    assert result is not None and result.best_metric is not None and result.best_metric >= 0.9
    assert result.examples_per_second > 0


def test_scores_shape_dtype_and_cold_item(fitted_lm, cyclic_data) -> None:
    histories = cyclic_data.histories(("train",))
    users = sorted(histories)[:5]
    scores = fitted_lm.score(ScoringBatch(users, [histories[u] for u in users]))
    assert scores.shape == (5, N_ITEMS) and scores.dtype == np.float32
    assert np.isfinite(scores).all()  # item 23 never appears in training: still scored from its text
    empty = fitted_lm.score(ScoringBatch(["new-user"], [np.array([], dtype=np.int64)]))
    assert empty.shape == (1, N_ITEMS) and np.isfinite(empty).all()


def test_cold_item_score_comes_from_its_text(fitted_lm, cyclic_data) -> None:
    """Give the cold item the text embedding of a warm item: it must then score like that item."""
    net = fitted_lm.net
    assert net is not None
    histories = cyclic_data.histories(("train",))
    user = min(histories)
    batch = ScoringBatch([user], [histories[user]])
    base = fitted_lm.score(batch)[0]
    target = int(np.argmax(base))
    with torch.no_grad():
        net.text_table[23] = net.text_table[target]
    after = fitted_lm.score(batch)[0]
    assert after[23] > np.median(after)


def test_save_load_round_trip_gives_identical_scores(fitted_lm, cyclic_data, tmp_path: Path) -> None:
    histories = cyclic_data.histories(("train", "validation"))
    users = sorted(histories)
    batch = ScoringBatch(users, [histories[u] for u in users])
    fitted_lm.save(tmp_path / "model")
    loaded = NextItemRecommender.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.score(batch), fitted_lm.score(batch))
    assert loaded.name == "next_item_lm"
    assert (tmp_path / "model" / "weights.safetensors").exists()


def test_same_seed_same_model(cyclic_data, runtime, encoder_settings) -> None:
    settings = small_settings(training=small_settings().training.model_copy(update={"max_epochs": 3}))
    scores = []
    for _ in range(2):
        model = NextItemRecommender(settings, item_encoder=encoder_settings, runtime=runtime)
        model.fit(
            cyclic_data, validate=local_validator(cyclic_data), item_embeddings=text_embeddings(N_ITEMS)
        )
        scores.append(model.score(ScoringBatch(["u000"], [np.array([1, 2, 3])])))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_id_only_ablation_and_segments(cyclic_data, runtime, tmp_path: Path) -> None:
    settings = small_settings(use_text=False, use_segment=True)
    model = NextItemRecommender(settings, runtime=runtime)
    assert model.name == "next_item_id"
    model.fit(cyclic_data, validate=lambda m: accuracy_at_1(m, cyclic_data))
    assert model.net is not None and model.net.text_dim is None and model.net.segment_emb is not None
    assert model.n_segments == 2
    assert accuracy_at_1(model, cyclic_data) >= 0.8
    model.save(tmp_path / "id")
    loaded = NextItemRecommender.load(tmp_path / "id")
    batch = ScoringBatch(["u001", "unknown"], [np.array([4, 5, 6]), np.array([4, 5, 6])])
    np.testing.assert_array_equal(loaded.score(batch), model.score(batch))


def test_sampled_softmax_trains(cyclic_data, runtime) -> None:
    settings = small_settings(loss="sampled_softmax", n_sampled_negatives=8)
    model = NextItemRecommender(settings, runtime=runtime)
    model.fit(cyclic_data, validate=lambda m: accuracy_at_1(m, cyclic_data),
              item_embeddings=text_embeddings(N_ITEMS))
    assert accuracy_at_1(model, cyclic_data) >= 0.7


def test_finetuned_item_encoder_end_to_end(cyclic_data, runtime, encoder_settings, tmp_path: Path) -> None:
    """Full-profile path on the tiny BERT: the LM item encoder trains inside the next-item model."""
    training = small_settings().training.model_copy(update={"max_epochs": 2, "unfreeze_schedule": {0: 1},
                                                            "lm_learning_rate": 1e-3})
    settings = small_settings(loss="sampled_softmax", n_sampled_negatives=8, finetune_item_encoder=True,
                              token_cache=False, training=training)
    model = NextItemRecommender(settings, item_encoder=encoder_settings, runtime=runtime)
    model.fit(cyclic_data, validate=local_validator(cyclic_data))
    assert model.encoder is not None and model.encoder.modified
    layers = model.encoder.transformer_layers()
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[-1].parameters())
    batch = ScoringBatch(["u002"], [np.array([1, 2, 3])])
    scores = model.score(batch)
    model.save(tmp_path / "ft")
    loaded = NextItemRecommender.load(tmp_path / "ft")
    np.testing.assert_allclose(loaded.score(batch), scores, rtol=1e-5, atol=1e-5)
    assert (tmp_path / "ft" / "item_encoder" / "model.safetensors").exists()


def test_attention_mask_is_causal() -> None:
    """Changing a later item must not change the hidden state of an earlier position."""
    torch.manual_seed(0)
    net = NextItemNet(10, None, NextItemSettings(use_text=False, d_model=16, n_heads=2, max_seq_len=5,
                                                 dropout=0.0)).eval()
    vecs = torch.cat([net.item_vectors(), torch.zeros(1, 16)])
    a = torch.tensor([[10, 1, 2, 3, 4]])
    b = torch.tensor([[10, 1, 2, 3, 9]])
    ha, _ = net.hidden(vecs[a], a != 10)
    hb, _ = net.hidden(vecs[b], b != 10)
    torch.testing.assert_close(ha[:, :4], hb[:, :4])
    assert not torch.allclose(ha[:, 4], hb[:, 4])
    # padding never leaks: a different pad embedding gives the same states on real positions
    vecs2 = vecs.clone()
    vecs2[10] = 5.0
    hc, _ = net.hidden(vecs2[a], a != 10)
    torch.testing.assert_close(ha[:, 1:], hc[:, 1:])


def test_unfitted_model_and_bad_settings_raise(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        NextItemRecommender().score(ScoringBatch(["u"], [np.array([1])]))
    with pytest.raises(ModelError):
        NextItemRecommender.load(tmp_path)
    with pytest.raises(ValueError):
        NextItemSettings(use_text=False, use_id_embedding=False)
    with pytest.raises(ValueError):
        NextItemSettings(finetune_item_encoder=True, loss="full_softmax", token_cache=False)


def test_history_pairs_are_causal() -> None:
    inputs = torch.tensor([[9, 1, 2, 3]])  # 9 = pad
    valid_in = inputs != 9
    valid_out = torch.tensor([[False, True, True, False]])
    rows, positions = history_pairs(inputs, valid_in, valid_out)
    seen = {(int(r), int(inputs.reshape(-1)[p])) for r, p in zip(rows, positions)}
    assert seen == {(0, 1), (1, 1), (1, 2)}  # row 0 predicts after item 1, row 1 after items 1 and 2


def test_history_penalty_auto_excludes_history_without_repeats(fitted_lm) -> None:
    """Nobody re-consumes an item in the cyclic data: auto excludes history items (finite, below all others),
    and the learned offset on top is negative and applied to exactly the history items."""
    net = fitted_lm.net
    assert fitted_lm.train_repeat_rate == 0.0 and fitted_lm.exclude_history
    history = np.array([3, 4, 5])
    scores = fitted_lm.score(ScoringBatch(["u"], [history]))[0]
    assert np.isfinite(scores).all()
    assert scores[history].max() < np.delete(scores, history).min()
    fitted_lm.exclude_history = False
    learned = fitted_lm.score(ScoringBatch(["u"], [history]))[0]
    assert net is not None and net.repeat_bias is not None and float(net.repeat_bias.detach()) < 0
    with torch.no_grad():
        saved = net.repeat_bias.clone()
        net.repeat_bias.zero_()
        without = fitted_lm.score(ScoringBatch(["u"], [history]))[0]
        net.repeat_bias.copy_(saved)
    np.testing.assert_allclose(learned[history] - without[history], float(saved), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.delete(learned, history), np.delete(without, history), rtol=1e-6)


def test_history_penalty_auto_learns_when_users_repeat(tmp_path: Path, runtime) -> None:
    sequences = {f"u{u}": [1, 2, 1, 3, 1, 4, 1, 5, 1, 6] for u in range(6)}
    data = write_prepared(tmp_path / "repeats", sequences, 8)
    model = NextItemRecommender(small_settings(training=small_settings().training.model_copy(
        update={"max_epochs": 2})), runtime=runtime)
    model.fit(data, validate=lambda m: 0.0, item_embeddings=text_embeddings(8))
    assert model.train_repeat_rate > 0.3 and not model.exclude_history
    off = NextItemRecommender(small_settings(history_penalty="off"), runtime=runtime)
    assert NextItemNet(8, 16, off.settings).repeat_bias is None


def test_warm_start_from_a_champion_starts_where_it_left_off(
    fitted_lm, cyclic_data, runtime, encoder_settings, tmp_path: Path
) -> None:
    fitted_lm.save(tmp_path / "champion")
    no_training = small_settings(training=TrainingSettings(
        max_epochs=1, max_steps_per_epoch=1, learning_rate=1e-9, unfreeze_schedule={0: 0}, warmup_ratio=0.0))
    cold = NextItemRecommender(no_training, item_encoder=encoder_settings, runtime=runtime)
    cold.fit(cyclic_data, item_embeddings=text_embeddings(N_ITEMS), validate=lambda m: 0.0)
    warm = NextItemRecommender(no_training, item_encoder=encoder_settings, runtime=runtime)
    warm.fit(cyclic_data, item_embeddings=text_embeddings(N_ITEMS), validate=lambda m: 0.0,
             warm_start=tmp_path / "champion")
    assert accuracy_at_1(warm, cyclic_data) >= 0.9 > accuracy_at_1(cold, cyclic_data)
