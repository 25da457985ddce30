"""The gate refuses a model that fails a fairness floor: real data prep, real models, real evaluate -> gate.

tests/fixtures/movielens_tiny (the MovieLens file format) goes through data_prep_step, train_baselines_step
and evaluate_step (which writes fairness.json); the best model is gated against the others, once without
floors (registered) and once with a floor on its own measured figure (refused, with the reason).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperrec.config import load_config
from hyperrec.registry import BundleRegistry
from hyperrec.steps import data_prep_step, evaluate_step, train_baselines_step
from hyperrec.steps.validate_and_register import validate_and_register_step
from tests.conftest import FIXTURES

NAME = "hyperrec-ranker"


@pytest.fixture
def evaluated(tmp_path: Path, pseudonym_key: str, fresh_db):
    settings = [
        f"output_dir={tmp_path / 'outputs' / 'latest'}",
        f"data.dataset_dir={FIXTURES / 'movielens_tiny'}",
        "data.download=false",
        "fairness.min_group_users=3",
    ]
    cfg = load_config(environ={}, overrides=settings)
    fresh_db(tmp_path / "outputs" / "mlflow.db")
    prepared, models, evaluation = tmp_path / "prepared", tmp_path / "models", tmp_path / "evaluation"
    data_prep_step(cfg, "pipe", prepared)
    train_baselines_step(cfg, "pipe", prepared, models)
    metrics = evaluate_step(cfg, "pipe", prepared, [models], evaluation)
    return cfg, metrics, evaluation


def test_a_failing_fairness_floor_blocks_registration(evaluated, tmp_path, write_bundle):
    cfg, metrics, evaluation = evaluated
    audit = json.loads((evaluation / "fairness.json").read_text())
    assert "fairness-audit" in (evaluation / "report.html").read_text()
    scores = {name: entry["full"]["ndcg@10"] for name, entry in metrics["models"].items()}
    challenger = max(scores, key=scores.get)
    others = [name for name in scores if scores[name] < scores[challenger]]
    segment = audit["models"][challenger]["groups"]["segment"]
    assert segment["ndcg_ratio"] is not None and segment["ndcg_ratio"] < 0.9

    passed = validate_and_register_step(cfg, "pipe-1", evaluation, write_bundle(tmp_path / "b1", seed=b"1"),
                                        challenger, registered_name=NAME, baselines=others)
    assert passed["decision"]["passed"] and passed["registered"]["version"] == "1"
    assert passed["decision"]["fairness_failures"] == []

    cfg.fairness.floors.min_segment_ndcg_ratio = 0.9
    refused = validate_and_register_step(cfg, "pipe-2", evaluation, write_bundle(tmp_path / "b2", seed=b"2"),
                                         challenger, registered_name=NAME, baselines=others)
    decision = refused["decision"]
    assert not decision["passed"] and refused["registered"] is None
    assert decision["margin"] > 0  # it beats every baseline: only the floor blocks it
    assert decision["reasons"][0].startswith("FAIL") and "fairness floor fails" in decision["reasons"][0]
    worst, best = segment["worst"], segment["best"]
    assert decision["fairness_failures"] == [
        f"worst segment group {worst!r} has NDCG@10 {segment['groups'][worst]['ndcg']:.4f}, "
        f"{segment['ndcg_ratio']:.1%} of the best group {best!r} ({segment['groups'][best]['ndcg']:.4f}); "
        "the floor is 90%"]
    assert len(BundleRegistry.from_target(cfg).client.search_model_versions(f"name = '{NAME}'")) == 1
