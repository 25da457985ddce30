"""Zero-shot reference and local validation metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperrec.errors import ModelError
from hyperrec.evaluation import metrics
from hyperrec.model_names import LANGUAGE_MODEL_CLASSES
from hyperrec.modeling.next_item import NextItemRecommender
from hyperrec.modeling.settings import ZeroShotSettings
from hyperrec.modeling.validation import default_validator, local_validator, ranking_metric
from hyperrec.modeling.zero_shot import ZeroShotRecommender
from hyperrec.models.base import ScoringBatch


def _embeddings(n: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)


def test_zero_shot_is_cosine_with_the_mean_of_recent_items(cyclic_data, runtime, tmp_path: Path) -> None:
    emb = _embeddings(24)
    model = ZeroShotRecommender(ZeroShotSettings(history_items=2), runtime=runtime)
    model.fit(cyclic_data, item_embeddings=emb)
    scores = model.score(ScoringBatch(["a", "b"], [np.array([5, 1, 2]), np.array([], dtype=np.int64)]))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    user = unit[[1, 2]].mean(0)
    np.testing.assert_allclose(scores[0], unit @ (user / np.linalg.norm(user)), rtol=1e-5, atol=1e-6)
    assert scores.dtype == np.float32 and np.all(scores[1] == 0)
    model.save(tmp_path / "zs")
    loaded = ZeroShotRecommender.load(tmp_path / "zs")
    np.testing.assert_array_equal(loaded.score(ScoringBatch(["a"], [np.array([3])])),
                                  model.score(ScoringBatch(["a"], [np.array([3])])))
    with pytest.raises(ModelError):
        ZeroShotRecommender().score(ScoringBatch(["a"], [np.array([3])]))
    with pytest.raises(ModelError, match="no saved zero-shot model in"):
        ZeroShotRecommender.load(tmp_path / "missing")
    excluding = ZeroShotRecommender(ZeroShotSettings(history_penalty="auto"), runtime=runtime)
    excluding.fit(cyclic_data, item_embeddings=emb)
    assert excluding.exclude_history and not model.exclude_history
    pushed = excluding.score(ScoringBatch(["a"], [np.array([5, 1, 2])]))[0]
    assert pushed[[5, 1, 2]].max() < np.delete(pushed, [5, 1, 2]).min()


def test_zero_shot_embeds_the_catalogue_with_the_encoder(cyclic_data, runtime, encoder_settings) -> None:
    model = ZeroShotRecommender(item_encoder=encoder_settings, runtime=runtime)
    model.fit(cyclic_data)
    assert model.item_vectors().shape == (24, 32)
    np.testing.assert_allclose(np.linalg.norm(model.item_vectors(), axis=1), 1.0, rtol=1e-5)


def test_ranking_metric_values() -> None:
    scores = np.array([[0.9, 0.8, 0.1, -np.inf], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    ndcg = ranking_metric(scores, [np.array([1]), np.array([0])], "ndcg@2")
    assert ndcg[0] == pytest.approx(1 / np.log2(3)) and ndcg[1] == 0.0
    assert ranking_metric(scores, [np.array([1]), np.array([0])], "hr@2").tolist() == [1.0, 0.0]
    tied = np.zeros((1, 4), dtype=np.float32)  # 4-way tie: expected rank 1.5 -> not < 1
    assert ranking_metric(tied, [np.array([2])], "hr@1").tolist() == [0.0]
    with pytest.raises(ValueError, match="full-protocol cutoff metric"):
        ranking_metric(scores, [np.array([1])], "sampled.ndcg@10")
    with pytest.raises(ValueError, match="unknown metric"):
        ranking_metric(scores, [np.array([1])], "precision@10")


def test_ranking_metric_is_the_reported_metric_when_a_user_has_more_relevant_items_than_k() -> None:
    """Recall@K is found / relevant (hyperrec.evaluation.metrics, as metrics.json reports it), not found /
    min(relevant, K): three relevant items at ranks 1, 2 and 4 give recall@2 = 2/3, and every key agrees."""
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]], dtype=np.float32)
    relevant = [np.array([0, 1, 3])]
    assert ranking_metric(scores, relevant, "recall@2").tolist() == pytest.approx([2 / 3])
    expected = metrics.cutoff_metrics([1, 2, 4], 3, [2])
    for key in ("hr@2", "ndcg@2", "map@2", "recall@2"):
        assert ranking_metric(scores, relevant, key).tolist() == pytest.approx([expected[key]]), key


class _Oracle:
    name = "oracle"

    def __init__(self, data) -> None:
        self.next = dict(zip(data.split("validation")["user_id"], data.split("validation")["item_idx"]))
        self.n = data.n_items

    def score(self, batch: ScoringBatch) -> np.ndarray:
        out = np.zeros((len(batch.user_ids), self.n), dtype=np.float32)
        for row, user in enumerate(batch.user_ids):
            out[row, self.next[user]] = 1.0
        return out


def test_local_validator_and_default_validator(cyclic_data) -> None:
    assert local_validator(cyclic_data)(_Oracle(cyclic_data)) == pytest.approx(1.0)
    assert local_validator(cyclic_data, metric="hr@5", max_users=10)(_Oracle(cyclic_data)) == pytest.approx(
        1.0
    )
    assert default_validator(cyclic_data, seed=1)(_Oracle(cyclic_data)) == pytest.approx(1.0)


def test_package_exports_and_registry_compatibility(cyclic_data, runtime, tmp_path: Path) -> None:
    import json

    import hyperrec.modeling as modeling
    from hyperrec.models.registry import load_model, register_model

    classes = modeling.model_classes()
    assert [cls.name for cls in classes] == list(LANGUAGE_MODEL_CLASSES)
    assert modeling.NextItemRecommender is NextItemRecommender
    model = ZeroShotRecommender(runtime=runtime)
    model.fit(cyclic_data, item_embeddings=_embeddings(24))
    model.save(tmp_path / "zs")
    assert json.loads((tmp_path / "zs" / "model.json").read_text())["model"] == "zero_shot_lm"
    register_model(ZeroShotRecommender)
    assert isinstance(load_model(tmp_path / "zs"), ZeroShotRecommender)
