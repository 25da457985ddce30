"""The registration gate: beats every baseline and the champion on the configured metric, or fails."""

from __future__ import annotations

import json
import math

import pytest

from hyperrec.registry.gate import (
    GateDecision,
    GateError,
    decide,
    learned_models,
    read_models_json,
    select_challenger,
)

BASELINES = ["popularity", "item_knn", "als", "bpr"]


@pytest.fixture
def metrics(make_metrics, baseline_values):
    return make_metrics({**baseline_values, "next_item_lm": 0.08, "zero_shot": 0.03})


def test_challenger_that_beats_every_baseline_passes_when_there_is_no_champion(metrics):
    decision = decide(metrics, "next_item_lm", BASELINES, champion_value=None)
    assert decision.passed
    assert decision.metric == "full.ndcg@10"
    assert decision.challenger_value == pytest.approx(0.08)
    assert (decision.best_baseline, decision.best_baseline_value) == ("als", pytest.approx(0.06))
    assert decision.champion_value is None and decision.champion_version is None
    assert decision.margin == pytest.approx(0.02)
    assert decision.baselines == pytest.approx(
        {"popularity": 0.02, "item_knn": 0.05, "als": 0.06, "bpr": 0.04}
    )
    assert decision.reasons[0].startswith("PASS")
    assert any("no champion" in reason for reason in decision.reasons)


def test_losing_to_one_baseline_fails_and_names_it(make_metrics, baseline_values):
    metrics = make_metrics({**baseline_values, "next_item_lm": 0.055})  # beats all but als (0.06)
    decision = decide(metrics, "next_item_lm", BASELINES, champion_value=None)
    assert not decision.passed
    assert decision.best_baseline == "als"
    assert decision.margin == pytest.approx(-0.005)
    failing = [reason for reason in decision.reasons if "does not beat" in reason]
    assert len(failing) == 1 and "baseline als" in failing[0]


def test_losing_to_the_champion_fails_even_when_every_baseline_is_beaten(metrics):
    decision = decide(metrics, "next_item_lm", BASELINES, champion_value=0.09, champion_version="3")
    assert not decision.passed
    assert decision.champion_value == 0.09 and decision.champion_version == "3"
    assert decision.margin == pytest.approx(-0.01)
    assert any("does not beat champion v3" in reason for reason in decision.reasons)


def test_beating_the_champion_and_every_baseline_passes(metrics):
    decision = decide(metrics, "next_item_lm", BASELINES, champion_value=0.07, champion_version="3")
    assert decision.passed
    assert decision.margin == pytest.approx(0.01)


def test_a_tie_is_not_an_improvement_and_min_improvement_is_a_strict_absolute_lead(
    make_metrics, baseline_values
):
    tie = make_metrics({**baseline_values, "next_item_lm": 0.06})
    assert not decide(tie, "next_item_lm", BASELINES, None).passed
    metrics = make_metrics({**baseline_values, "next_item_lm": 0.065})
    assert decide(metrics, "next_item_lm", BASELINES, None, min_improvement=0.001).passed
    assert not decide(metrics, "next_item_lm", BASELINES, None, min_improvement=0.01).passed
    with pytest.raises(GateError, match="min_improvement"):
        decide(metrics, "next_item_lm", BASELINES, None, min_improvement=-0.1)


def test_other_metrics_and_protocols_can_gate(metrics):
    assert decide(metrics, "next_item_lm", BASELINES, None, metric="sampled.auc").passed
    assert decide(metrics, "next_item_lm", BASELINES, None, metric="coverage@10").passed
    assert not decide(metrics, "zero_shot", BASELINES, None, metric="full.hr@20").passed


def test_a_metric_without_protocol_means_the_full_protocol(metrics):
    decision = decide(metrics, "next_item_lm", BASELINES, None, metric="ndcg@10")
    assert decision.metric == "full.ndcg@10" and decision.passed


@pytest.mark.parametrize("metric", ["full.ndcg@5", "fulll.ndcg@10", "auc", "full.auc", "full.", ""])
def test_missing_metric_is_an_error_not_a_pass(metrics, metric):
    with pytest.raises(GateError):
        decide(metrics, "next_item_lm", BASELINES, None, metric=metric)


@pytest.mark.parametrize("metric", ["full.ndcg@10_se", "scoring_seconds", "n_users"])
def test_metrics_that_are_not_higher_is_better_scores_are_refused(metrics, metric):
    with pytest.raises(GateError, match="higher-is-better"):
        decide(metrics, "next_item_lm", BASELINES, None, metric=metric)


def test_missing_models_and_bad_values_are_errors(metrics, make_metrics, baseline_values):
    with pytest.raises(GateError, match="'ghost' is not in metrics.json"):
        decide(metrics, "ghost", BASELINES, None)
    with pytest.raises(GateError, match="'bpr' is not in metrics.json"):
        without_bpr = make_metrics({k: v for k, v in baseline_values.items() if k != "bpr"} | {"lm": 0.1})
        decide(without_bpr, "lm", BASELINES, None)
    with pytest.raises(GateError, match="at least one baseline"):
        decide(metrics, "next_item_lm", [], None)
    with pytest.raises(GateError, match="is itself one of the baselines"):
        decide(metrics, "als", BASELINES, None)
    with pytest.raises(GateError, match="champion value"):
        decide(metrics, "next_item_lm", BASELINES, champion_value=math.nan)
    broken = make_metrics({**baseline_values, "next_item_lm": 0.08})
    broken["models"]["next_item_lm"]["full"]["ndcg@10"] = math.nan
    with pytest.raises(GateError, match="not finite"):
        decide(broken, "next_item_lm", BASELINES, None)
    broken["models"]["next_item_lm"]["full"]["ndcg@10"] = "0.3"
    with pytest.raises(GateError, match="not a number"):
        decide(broken, "next_item_lm", BASELINES, None)
    with pytest.raises(GateError, match="no 'models'"):
        decide({"split": "test"}, "next_item_lm", BASELINES, None)


def test_select_challenger_picks_the_best_learned_model(metrics):
    learned = learned_models(metrics, BASELINES)
    assert learned == ["next_item_lm", "zero_shot"]
    assert select_challenger(metrics, learned) == "next_item_lm"
    assert select_challenger(metrics, learned, metric="full.ndcg@10") == "next_item_lm"
    metrics["models"]["zero_shot"]["full"]["ndcg@10"] = 0.08  # a tie goes to the first name
    assert select_challenger(metrics, ["zero_shot", "next_item_lm"]) == "next_item_lm"
    with pytest.raises(GateError):
        select_challenger(metrics, [])
    with pytest.raises(GateError, match="'ghost'"):
        select_challenger(metrics, ["next_item_lm", "ghost"])


def test_decision_round_trips_through_json(metrics):
    decision = decide(metrics, "next_item_lm", BASELINES, champion_value=0.07, champion_version="2")
    data = json.loads(decision.to_json())
    assert set(data) == {"passed", "metric", "challenger", "challenger_value", "best_baseline",
                         "best_baseline_value", "champion_value", "champion_version", "margin",
                         "min_improvement", "baselines", "reasons", "fairness_failures"}
    assert GateDecision.from_dict(data) == decision


def test_a_gate_input_that_is_missing_unreadable_or_without_models_is_a_gate_error(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    with pytest.raises(GateError, match="^no metrics here$"):
        read_models_json(path, missing="no metrics here", schema="harness")
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(GateError, match=f"^unreadable {path}: "):
        read_models_json(path, missing="-", schema="harness")
    path.write_text('{"model": {}}', encoding="utf-8")
    with pytest.raises(GateError, match=r"has no 'models' section \(harness schema expected\)"):
        read_models_json(path, missing="-", schema="harness")
    path.write_text('{"models": {"bpr": {}}}', encoding="utf-8")
    assert read_models_json(path, missing="-", schema="harness") == {"models": {"bpr": {}}}
