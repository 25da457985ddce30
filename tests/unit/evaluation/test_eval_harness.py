"""The harness end to end on tiny prepared folders: exact values, files, masking, segments, recompute."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prepared_builder import random_prepared, write_prepared

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.evaluation.harness import evaluate, evaluate_ranking_metric, parse_metric
from hyperrec.evaluation.recompute import disagreements, recompute_full_metrics
from hyperrec.evaluation.settings import EvaluationConfig
from hyperrec.evaluation.tables import metrics_table, metrics_table_from_file
from hyperrec.models.base import Recommender, ScoringBatch
from hyperrec.models.popularity import PopularityRecommender

LOG3 = math.log2(3)


class FixedScores(Recommender):
    """Scores every user with the same vector and records the histories it was sent."""

    name = "fixed"

    def __init__(self, scores: list[float]) -> None:
        self.vector = np.asarray(scores, dtype=np.float32)
        self.seen: dict[str, list[int]] = {}

    def fit(self, data: PreparedData) -> None:
        """Nothing to learn."""

    def score(self, batch: ScoringBatch) -> np.ndarray:
        self.seen.update({u: h.tolist() for u, h in zip(batch.user_ids, batch.histories, strict=True)})
        return np.tile(self.vector, (len(batch.user_ids), 1))

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> FixedScores:
        raise NotImplementedError


class RandomScores(FixedScores):
    """Independent random scores per call, rounded so that ties are frequent."""

    name = "random"

    def __init__(self, seed: int) -> None:
        super().__init__([])
        self.rng = np.random.default_rng(seed)

    def score(self, batch: ScoringBatch) -> np.ndarray:
        n_items = 30
        return np.round(self.rng.random((len(batch.user_ids), n_items)), 1).astype(np.float32)


@pytest.fixture
def two_users(tmp_path: Path) -> PreparedData:
    # a: train 0,1 / validation 2 / test 3;  b: train 4 / validation 5 / test 0
    return write_prepared(tmp_path / "prepared", 6, train={"a": [0, 1], "b": [4]},
                          validation={"a": [2], "b": [5]}, test={"a": [3], "b": [0]})


CFG = EvaluationConfig(k_values=[1, 2], top_n=3, sampled_negatives=100, user_batch_size=1)


def test_exact_metrics_masking_and_files(two_users: PreparedData, tmp_path: Path):
    model = FixedScores([6, 5, 4, 3, 2, 1])
    out = tmp_path / "eval"
    segments = pd.DataFrame({"user_id": ["a", "b", "zz"], "segment": [1, 2, 2]})
    result = evaluate({"fixed": model}, two_users, CFG, out, seed=0, segments=segments)

    # test split: the history holds train + validation, only train items are masked
    assert model.seen == {"a": [0, 1, 2], "b": [4, 5]}
    entry = result["models"]["fixed"]
    # a ranks its target 3 second (behind its validation item 2); b ranks target 0 first
    assert entry["full"] == pytest.approx({
        "hr@1": 0.5, "ndcg@1": 0.5, "map@1": 0.5, "recall@1": 0.5,
        "hr@2": 1.0, "ndcg@2": (1 / LOG3 + 1) / 2, "map@2": (0.5 + 1) / 2, "recall@2": 1.0,
        "mrr": 0.75, "ndcg@1_se": 0.5, "ndcg@2_se": (1 - 1 / LOG3) / 2,
    })
    # the only untouched items are the negatives; both targets outscore them
    assert entry["sampled"]["hr@1"] == 1.0 and entry["sampled"]["auc"] == 1.0
    assert entry["coverage@1"] == pytest.approx(2 / 6) and entry["coverage@2"] == pytest.approx(4 / 6)
    assert entry["n_users"] == 2
    assert entry["segments"]["1"]["n_users"] == 1 and entry["segments"]["1"]["full"]["hr@1"] == 0.0
    assert entry["segments"]["2"]["full"]["hr@1"] == 1.0 and set(entry["segments"]) == {"1", "2"}

    assert json.loads((out / "metrics.json").read_text()) == result
    assert result["split"] == "test" and result["protocol"]["history_splits"] == ["train", "validation"]
    lines = (out / "fixed" / "recommendations.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"user_id": "a", "items": ["m2", "m3", "m4"]},  # validation item m2 stays a candidate
        {"user_id": "b", "items": ["m0", "m1", "m2"]},
    ]


def test_users_without_a_segment_are_left_out_of_the_breakdown(two_users: PreparedData, tmp_path: Path):
    segments = pd.DataFrame({"user_id": ["b"], "segment": [10]})
    result = evaluate({"fixed": FixedScores([6, 5, 4, 3, 2, 1])}, two_users, CFG, tmp_path, seed=0,
                      segments=segments)
    breakdown = result["models"]["fixed"]["segments"]
    assert list(breakdown) == ["10"] and breakdown["10"]["n_users"] == 1
    assert breakdown["10"]["full"]["mrr"] == 1.0 and breakdown["10"]["sampled"]["auc"] == 1.0


def test_validation_split_sees_train_only(two_users: PreparedData, tmp_path: Path):
    model = FixedScores([6, 5, 4, 3, 2, 1])
    result = evaluate({"fixed": model}, two_users, CFG, tmp_path / "eval", split="validation", seed=0)
    assert model.seen == {"a": [0, 1], "b": [4]}
    # a: target 2 first among 2,3,4,5; b: target 5 fifth among 0,1,2,3,5
    assert result["models"]["fixed"]["full"]["mrr"] == pytest.approx((1 + 1 / 5) / 2)


@pytest.mark.parametrize("test_items", [1, 3])
def test_recomputation_from_written_lists_agrees(tmp_path: Path, test_items: int):
    data = random_prepared(tmp_path / "prepared", n_users=40, n_items=30, seed=7, test_items=test_items)
    popularity = PopularityRecommender()
    popularity.fit(data)
    models = {"popularity": popularity, "random": RandomScores(1), "constant": FixedScores([0.0] * 30)}
    cfg = EvaluationConfig(k_values=[1, 5, 10], top_n=10, user_batch_size=16)
    result = evaluate(models, data, cfg, tmp_path / "eval", seed=11)
    assert disagreements(result, tmp_path / "eval", data.root / "test.parquet") == []
    recomputed = recompute_full_metrics(tmp_path / "eval" / "random" / "recommendations.jsonl",
                                        data.root / "test.parquet", [5, 50], top_n=10)
    assert set(recomputed) == {"hr@5", "ndcg@5", "map@5", "recall@5", "mrr@10"}


def test_recomputation_catches_a_wrong_metric(random_data: PreparedData, tmp_path: Path):
    model = PopularityRecommender()
    model.fit(random_data)
    result = evaluate({"popularity": model}, random_data, EvaluationConfig(top_n=20), tmp_path, seed=0)
    result["models"]["popularity"]["full"]["ndcg@10"] += 0.01
    result["models"]["popularity"]["full"]["mrr"] += 0.5
    problems = disagreements(result, tmp_path, random_data.root / "test.parquet")
    assert len(problems) == 2 and "ndcg@10" in problems[0] and "mrr" in problems[1]


def test_models_share_negatives_and_tie_breaks(random_data: PreparedData, tmp_path: Path):
    first, second = PopularityRecommender(), PopularityRecommender()
    first.fit(random_data)
    second.fit(random_data)
    result = evaluate({"a": first, "b": second}, random_data, EvaluationConfig(), tmp_path, seed=3)
    a, b = result["models"]["a"], result["models"]["b"]
    assert a["full"] == b["full"] and a["sampled"] == b["sampled"]


@pytest.mark.parametrize("metric", ["ndcg@10", "full.hr@5", "mrr", "sampled.ndcg@10", "sampled.auc"])
def test_ranking_metric_equals_the_full_evaluation(random_data: PreparedData, tmp_path: Path, metric: str):
    model = PopularityRecommender()
    model.fit(random_data)
    cfg = EvaluationConfig(k_values=[5, 10])
    result = evaluate({"p": model}, random_data, cfg, tmp_path, split="validation", seed=5)
    protocol, key, _ = parse_metric(metric)
    value = evaluate_ranking_metric(model, random_data, split="validation", metric=metric, seed=5)
    assert value == pytest.approx(result["models"]["p"][protocol][key], abs=1e-12)


@pytest.mark.parametrize("metric", ["ndcg", "ndcg@0", "full.auc", "other.hr@10", "precision@10", "hr@x"])
def test_unknown_metrics_are_rejected(metric: str):
    with pytest.raises(ValueError):
        parse_metric(metric)


def test_bad_scores_and_splits_fail_clearly(two_users: PreparedData, tmp_path: Path):
    with pytest.raises(ModelError, match="shape"):
        evaluate({"short": FixedScores([1.0, 2.0])}, two_users, CFG, tmp_path, seed=0)
    with pytest.raises(ValueError, match="split"):
        evaluate({"fixed": FixedScores([0.0] * 6)}, two_users, CFG, tmp_path, split="train", seed=0)


def test_table_lists_models_and_both_protocols(two_users: PreparedData, tmp_path: Path):
    evaluate({"fixed": FixedScores([6, 5, 4, 3, 2, 1])}, two_users, CFG, tmp_path, seed=0)
    table = metrics_table_from_file(tmp_path / "metrics.json")
    header = table.splitlines()[2]
    for column in ("full hr@1", "full ndcg@1", "full recall@2", "full mrr", "sampled auc", "coverage@1"):
        assert column in header
    assert "full auc" not in header
    assert "| fixed" in table and "0.5000 ±0.5000" in table
    assert "sampled hr@1" not in metrics_table(json.loads((tmp_path / "metrics.json").read_text()),
                                               keys=["mrr"])


def test_a_target_already_in_train_is_a_miss_under_both_protocols(tmp_path: Path, caplog):
    data = write_prepared(tmp_path / "prepared", 5, train={"a": [0, 1]}, validation={"a": [2]},
                          test={"a": [1]})
    with caplog.at_level("WARNING"):
        result = evaluate({"fixed": FixedScores([0, 9, 0, 0, 0])}, data, CFG, tmp_path / "eval", seed=0)
    entry = result["models"]["fixed"]
    assert entry["full"]["mrr"] == 0.0 and entry["sampled"]["mrr"] == 0.0 and entry["sampled"]["auc"] == 0.0
    assert "1 test targets are already among their user's train items" in caplog.text


def test_a_sample_of_an_evaluation_set_is_seeded_ordered_and_keeps_each_users_rows(tmp_path: Path):
    """The cold slot is fitted on a sample of validation users: their full score rows must fit in memory."""
    from hyperrec.evaluation.harness import EvaluationSet

    data = random_prepared(tmp_path / "prepared", n_users=40, n_items=30, seed=7)
    full = EvaluationSet.build(data, "validation", seed=1, sampled_negatives=5)
    sample = full.sample(10, seed=3)
    assert len(sample.user_ids) == 10 and sample.user_ids == sorted(sample.user_ids, key=full.user_ids.index)
    assert sample.user_ids == full.sample(10, seed=3).user_ids != full.sample(10, seed=4).user_ids
    for row, user in enumerate(sample.user_ids):
        i = full.user_ids.index(user)
        assert np.array_equal(sample.targets[row], full.targets[i])
        assert np.array_equal(sample.histories[row], full.histories[i])
        assert np.array_equal(sample.negatives[row], full.negatives[i])
    assert full.sample(len(full.user_ids), seed=3) is full
