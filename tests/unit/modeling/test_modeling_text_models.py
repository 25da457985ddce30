"""Bi-encoder (two towers, InfoNCE) and cross-encoder reranker on the tiny random BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hyperrec.modeling.bi_encoder import BiEncoderRecommender, top_k, training_pairs
from hyperrec.modeling.cross_encoder import CrossEncoderReranker
from hyperrec.modeling.settings import BiEncoderSettings, CrossEncoderSettings
from hyperrec.modeling.training_settings import TrainingSettings
from hyperrec.modeling.validation import local_validator
from hyperrec.modeling.zero_shot import ZeroShotRecommender
from hyperrec.models.base import ScoringBatch


def _training(**kw) -> TrainingSettings:
    values = {
        "max_epochs": 2,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "lm_learning_rate": 1e-3,
        "warmup_ratio": 0.1,
        "unfreeze_schedule": {0: 1, 1: 2},
        "patience": 5,
        "max_steps_per_epoch": 4,
    }
    values.update(kw)
    return TrainingSettings(**values)


def _reranker(cyclic_data, runtime, encoder_settings, *, seed: int,
              **settings) -> tuple[ZeroShotRecommender, CrossEncoderReranker]:
    """An unfitted cross-encoder with ``settings`` over a zero-shot retriever of random item embeddings."""
    retriever = ZeroShotRecommender(runtime=runtime)
    retriever.fit(
        cyclic_data, item_embeddings=np.random.default_rng(seed).normal(size=(24, 8)).astype(np.float32)
    )
    reranker = CrossEncoderReranker(retriever, CrossEncoderSettings(**settings),
                                    item_encoder=encoder_settings, runtime=runtime)
    return retriever, reranker


@pytest.fixture
def bi_encoder(cyclic_data, runtime, encoder_settings) -> BiEncoderRecommender:
    settings = BiEncoderSettings(profile_max_length=48, profile_max_items=4, item_max_length=24,
                                 examples_per_user=2, min_prefix=2, training=_training())
    model = BiEncoderRecommender(settings, item_encoder=encoder_settings, runtime=runtime)
    model.fit(cyclic_data, validate=local_validator(cyclic_data, max_users=10))
    return model


def test_training_pairs_include_the_last_position() -> None:
    histories = {"a": np.arange(10), "b": np.arange(3), "c": np.arange(1)}
    pairs = training_pairs(histories, per_user=3, min_prefix=2, rng=np.random.default_rng(0))
    assert ("a", 9) in pairs and ("b", 2) in pairs and not any(u == "c" for u, _ in pairs)
    assert sum(u == "a" for u, _ in pairs) == 3 and all(t >= 2 for _, t in pairs)


def test_top_k_is_sorted() -> None:
    idx, vals = top_k(np.array([[0.1, 0.5, 0.3, 0.9]]), 3)
    assert idx.tolist() == [[3, 1, 2]] and vals.tolist() == [[0.9, 0.5, 0.3]]


def test_bi_encoder_trains_scores_retrieves_and_round_trips(bi_encoder, cyclic_data, tmp_path: Path) -> None:
    result = bi_encoder.train_result
    assert result is not None and result.epochs_run == 2 and result.steps == 8
    assert len(result.history) == 2 and result.best_metric is not None
    # the schedule {0: 1, 1: 2} ended with both layers trainable
    assert all(
        p.requires_grad for layer in bi_encoder.user_tower.transformer_layers() for p in layer.parameters()
    )
    assert bi_encoder.user_tower is bi_encoder.item_tower and bi_encoder.user_tower.modified

    histories = cyclic_data.histories(("train",))
    users = sorted(histories)[:4]
    batch = ScoringBatch(users, [histories[u] for u in users])
    scores = bi_encoder.score(batch)
    assert scores.shape == (4, 24) and scores.dtype == np.float32 and np.isfinite(scores).all()
    assert bi_encoder.exclude_history  # nobody repeats an item in this data: auto pushes history items down
    for row, user in enumerate(users):
        rest = np.delete(scores[row], histories[user])
        assert np.abs(rest).max() <= 1.0 + 1e-5  # cosines
        assert scores[row, histories[user]].max() < rest.min()
    assert "(" in bi_encoder.profile_text(histories[users[0]])

    idx, vals = bi_encoder.retrieve(batch, k=5)
    assert idx.shape == (4, 5)
    for row, user in enumerate(users):
        assert not set(idx[row].tolist()) & set(histories[user].tolist())
        np.testing.assert_allclose(vals[row], np.sort(vals[row])[::-1])

    bi_encoder.save(tmp_path / "bi")
    loaded = BiEncoderRecommender.load(tmp_path / "bi")
    np.testing.assert_allclose(loaded.score(batch), scores, atol=1e-5)


def test_bi_encoder_frozen_lower_layer_does_not_change(cyclic_data, runtime, encoder_settings) -> None:
    settings = BiEncoderSettings(
        profile_max_length=32,
        item_max_length=16,
        examples_per_user=1,
        min_prefix=2,
        share_towers=False,
        training=_training(max_epochs=1, unfreeze_schedule={0: 1}),
    )
    model = BiEncoderRecommender(settings, item_encoder=encoder_settings, runtime=runtime)
    from hyperrec.modeling.item_encoder import TextEncoder

    fresh = TextEncoder(encoder_settings.model_path)
    model.fit(cyclic_data, validate=local_validator(cyclic_data, max_users=5))
    for tower in (model.user_tower, model.item_tower):
        low = dict(tower.transformer_layers()[0].named_parameters())
        high = dict(tower.transformer_layers()[1].named_parameters())
        fresh_low = dict(fresh.transformer_layers()[0].named_parameters())
        fresh_high = dict(fresh.transformer_layers()[1].named_parameters())
        assert all(torch.equal(low[k], fresh_low[k]) for k in low)
        assert any(not torch.equal(high[k], fresh_high[k]) for k in high)
    assert model.user_tower is not model.item_tower


def test_cross_encoder_reranks_the_retriever_top(
    cyclic_data, runtime, encoder_settings, tmp_path: Path
) -> None:
    retriever, reranker = _reranker(
        cyclic_data, runtime, encoder_settings, seed=0, max_length=64, profile_max_items=3, candidates=5,
        negatives_per_positive=2, min_prefix=2, training=_training(max_epochs=1, batch_size=6),
    )
    settings = reranker.settings
    reranker.fit(cyclic_data, validate=local_validator(cyclic_data, max_users=5))
    assert reranker.train_result is not None and reranker.train_result.steps == 4

    histories = cyclic_data.histories(("train",))
    users = sorted(histories)[:3]
    batch = ScoringBatch(users, [histories[u] for u in users])
    scores = reranker.score(batch)
    base = retriever.score(batch)
    assert scores.shape == (3, 24) and scores.dtype == np.float32
    for row, user in enumerate(users):
        masked = base[row].copy()
        masked[histories[user]] = -np.inf
        top5 = set(np.argsort(-masked)[:5].tolist())
        assert set(np.argsort(-scores[row])[:5].tolist()) == top5  # reranked block stays on top
        rest = [i for i in np.argsort(-scores[row])[5:] if i not in histories[user]]
        assert [base[row][i] for i in rest] == sorted((base[row][i] for i in rest), reverse=True)

    # the retriever weight was chosen on validation from the grid, and is saved with the model
    assert set(reranker.fusion_results) == {str(w) for w in settings.fusion_grid}
    assert reranker.fusion_weight in settings.fusion_grid
    reranker.save(tmp_path / "ce")
    loaded = CrossEncoderReranker.load(tmp_path / "ce")
    assert isinstance(loaded.retriever, ZeroShotRecommender)
    assert loaded.fusion_weight == reranker.fusion_weight
    np.testing.assert_allclose(loaded.score(batch), scores, atol=1e-5)


def test_cross_encoder_listwise_loss_runs(cyclic_data, runtime, encoder_settings) -> None:
    _, reranker = _reranker(
        cyclic_data, runtime, encoder_settings, seed=1, max_length=48, candidates=4, negatives_per_positive=3,
        loss="listwise", min_prefix=2, training=_training(max_epochs=1, batch_size=8, max_steps_per_epoch=2),
    )
    reranker.fit(cyclic_data, validate=lambda m: 0.0)
    assert reranker.train_result.steps == 2
    assert reranker.fusion_weight == 0.0  # ties: the smallest weight wins


def test_cross_encoder_with_fixed_weight_follows_the_retriever(
    cyclic_data, runtime, encoder_settings
) -> None:
    retriever, reranker = _reranker(
        cyclic_data, runtime, encoder_settings, seed=2, max_length=48, candidates=6, negatives_per_positive=2,
        min_prefix=2, retriever_weight=1e6, training=_training(max_epochs=1, max_steps_per_epoch=1),
    )
    reranker.fit(cyclic_data, validate=lambda m: 0.0)
    batch = ScoringBatch(["u000"], [np.array([1, 2, 3])])
    base = retriever.score(batch)[0]
    base[[1, 2, 3]] = -np.inf
    order = np.argsort(-reranker.score(batch)[0])[:6]
    assert order.tolist() == np.argsort(-base)[:6].tolist()  # a huge retriever weight keeps its order
