"""The classical baselines: what they score, and that saving and loading changes nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hyperrec.config import BaselinesConfig, HyperrecConfig
from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.models.base import Recommender, ScoringBatch
from hyperrec.models.factorization import ALSRecommender, BPRRecommender
from hyperrec.models.interactions import history_matrix
from hyperrec.models.item_knn import ItemKNNRecommender
from hyperrec.models.popularity import PopularityRecommender
from hyperrec.models.registry import (
    BASELINES,
    build_baseline,
    build_baselines,
    load_model,
    model_class,
    register_model,
)

SMALL = BaselinesConfig(knn_neighbors=5, als_factors=8, als_iterations=3, bpr_factors=8, bpr_iterations=5)


def _batch(*histories: list[int]) -> ScoringBatch:
    return ScoringBatch([f"x{i}" for i in range(len(histories))], [np.array(h) for h in histories])


def test_popularity_ranks_items_by_distinct_train_users(write_prepared, tmp_path: Path):
    data = write_prepared(tmp_path, 4, train={"a": [2, 1], "b": [2, 1], "c": [2, 3]}, test={"a": [0]})
    model = PopularityRecommender()
    model.fit(data)
    scores = model.score(_batch([0], []))
    assert scores.dtype == np.float32
    assert scores.tolist() == [[0, 2, 3, 1], [0, 2, 3, 1]]


def test_item_knn_on_a_hand_checked_matrix(write_prepared, tmp_path: Path):
    # item 0: users a,b; item 1: a,b,c; item 2: b,c,d
    # cos(0,1) = 2/sqrt(6), cos(0,2) = 1/sqrt(6), cos(1,2) = 2/3
    data = write_prepared(tmp_path, 3, train={"a": [0, 1], "b": [0, 1, 2], "c": [1, 2], "d": [2]})
    full = ItemKNNRecommender(BaselinesConfig(knn_neighbors=2))
    full.fit(data)
    c01, c02, c12 = 2 / math.sqrt(6), 1 / math.sqrt(6), 2 / 3
    expected = [[0, c01, c02], [c01, 0, c12], [c01 + c02, c01 + c12, c02 + c12]]
    assert full.score(_batch([0], [1], [0, 1, 2])) == pytest.approx(np.array(expected, dtype=np.float32))

    # k=1: item 0 keeps neighbour 1, item 1 keeps 0, item 2 keeps 1; a candidate sums only its neighbours
    nearest = ItemKNNRecommender(BaselinesConfig(knn_neighbors=1))
    nearest.fit(data)
    expected = [[0, c01, 0], [c01, 0, c12], [c01, c01, c12]]
    assert nearest.score(_batch([0], [1], [0, 1, 2])) == pytest.approx(np.array(expected, dtype=np.float32))


@pytest.mark.parametrize("cls", BASELINES)
def test_save_and_load_give_identical_scores(cls, random_data: PreparedData, tmp_path: Path):
    model = cls(SMALL, seed=1, threads=1)
    model.fit(random_data)
    batch = _batch([0, 3, 5], [], [7, 7, 2], list(range(20)))
    before = model.score(batch)
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert type(loaded) is cls
    assert np.array_equal(loaded.score(batch), before)
    assert before.shape == (4, random_data.n_items) and before.dtype == np.float32
    assert np.isfinite(before).all()
    assert not any(path.suffix in {".pkl", ".pickle"} for path in (tmp_path / "saved").iterdir())


@pytest.mark.parametrize("cls", BASELINES)
def test_scores_depend_on_the_history_not_the_user(cls, random_data: PreparedData):
    model = cls(SMALL, seed=1, threads=1)
    model.fit(random_data)
    same = model.score(ScoringBatch(["u000", "someone-new"], [np.array([1, 4]), np.array([4, 1])]))
    assert np.allclose(same[0], same[1])


@pytest.mark.parametrize("cls", [ALSRecommender, BPRRecommender])
def test_factorization_is_seeded(cls, random_data: PreparedData):
    runs = []
    for seed in (4, 4, 5):
        model = cls(SMALL, seed=seed, threads=1)
        model.fit(random_data)
        runs.append(model.score(_batch([1, 2, 3])))
    assert np.allclose(runs[0], runs[1]) and not np.allclose(runs[0], runs[2])


def test_bpr_gives_one_model_per_seed_whatever_the_thread_setting(random_data: PreparedData):
    """Hogwild SGD over several threads depends on scheduling; BPR trains on one thread whatever
    ``threads``."""
    runs = []
    for threads in (1, 2, 2):
        model = BPRRecommender(SMALL, seed=4, threads=threads)
        model.fit(random_data)
        runs.append(model.score(_batch([1, 2, 3])))
    assert all(np.array_equal(runs[0], run) for run in runs[1:])


def test_als_scores_follow_the_history(random_data: PreparedData):
    model = ALSRecommender(BaselinesConfig(als_factors=4, als_iterations=10), seed=0)
    model.fit(random_data)
    scores = model.score(_batch([1, 2, 3], [10, 11, 12]))
    assert not np.allclose(scores[0], scores[1])
    assert scores[0, [1, 2, 3]].mean() > scores[0].mean()


def test_bpr_user_factor_is_the_mean_of_history_factors_with_a_unit_bias():
    model = BPRRecommender(BaselinesConfig(bpr_factors=2))
    model.item_factors = np.array([[1.0, 0.0, 0.5], [0.0, 2.0, -1.0], [1.0, 1.0, 0.0]], dtype=np.float32)
    # user = [(1+0)/2, (0+2)/2, 1] = [0.5, 1, 1]
    assert model.score(_batch([0, 1])).tolist() == [[1.0, 1.0, 1.5]]
    assert model.score(_batch([])).tolist() == [[0.5, -1.0, 0.0]]  # bias only


@pytest.mark.parametrize("cls", BASELINES)
def test_unfitted_models_refuse_to_score_or_save(cls, tmp_path: Path):
    model = cls(SMALL)
    with pytest.raises(ModelError, match="not fitted"):
        model.score(_batch([0]))
    with pytest.raises(ModelError, match="not fitted"):
        model.save(tmp_path)


def test_history_outside_the_catalogue_is_rejected():
    with pytest.raises(ModelError, match="outside the catalogue"):
        history_matrix([np.array([0, 9])], 5)
    assert history_matrix([np.array([3, 3, 1]), np.array([], dtype=np.int64)], 5).toarray().tolist() == [
        [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]


def test_registry_builds_loads_and_guards_names(random_data: PreparedData, tmp_path: Path):
    cfg = HyperrecConfig(seed=9, threads=1)
    models = build_baselines(cfg)
    assert list(models) == ["popularity", "item_knn", "als", "bpr"]
    assert models["als"].seed == 9 and models["bpr"].config == cfg.baselines
    assert model_class("item_knn") is ItemKNNRecommender
    with pytest.raises(ModelError, match="unknown model"):
        model_class("sasrec-never-registered")
    with pytest.raises(ModelError, match="unknown baseline"):
        build_baseline("nope", SMALL, seed=0)

    class Clash(PopularityRecommender):
        name = "als"

    with pytest.raises(ModelError, match="already registered"):
        register_model(Clash)
    assert register_model(ALSRecommender) is ALSRecommender

    with pytest.raises(ModelError, match="missing"):
        load_model(tmp_path / "nothing")
    model = build_baseline("popularity", SMALL, seed=0)
    model.fit(random_data)
    model.save(tmp_path / "pop")
    with pytest.raises(ModelError, match="not 'item_knn'"):
        ItemKNNRecommender.load(tmp_path / "pop")
    (tmp_path / "pop" / "model.json").write_text(json.dumps({"kind": "?"}))
    with pytest.raises(ModelError, match="does not name"):
        load_model(tmp_path / "pop")


def test_every_baseline_is_a_recommender_with_a_unique_name():
    assert all(issubclass(cls, Recommender) for cls in BASELINES)
    assert len({cls.name for cls in BASELINES}) == len(BASELINES)
