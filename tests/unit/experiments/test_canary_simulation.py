"""Simulated canaries: the "Done when" cases of issue 10, decided by the real controller step by step."""

import json

import pytest

from hyperrec.cli import main
from hyperrec.experiments.controller import CanaryController, CanaryState
from hyperrec.experiments.settings import CanaryConfig
from hyperrec.experiments.simulation import outcome_rates, scenarios, simulate

CFG = CanaryConfig()
SCENARIOS = scenarios(CFG.baseline_ctr)


def test_better_challenger_is_promoted_through_every_stage():
    run = simulate(CFG, SCENARIOS["better"], seed=0)
    assert run.outcome == "promoted"
    promotions = [(d.traffic_before, d.traffic_after) for d in run.decisions if d.action == "promote"]
    assert promotions == [(10, 50), (50, 100)]
    assert run.decisions[-1].test["verdict"] == "better" and run.decisions[-1].test["p_value"] <= CFG.alpha


def test_better_challenger_is_promoted_at_least_as_often_as_the_planned_power():
    rates = outcome_rates(CFG, SCENARIOS["better"], runs=200)
    assert rates["promotion_rate"] >= CFG.power


def test_worse_challenger_is_rolled_back():
    rates = outcome_rates(CFG, SCENARIOS["worse"], runs=200)
    assert rates["promoted"] == 0
    run = simulate(CFG, SCENARIOS["worse"], seed=0)
    assert run.outcome == "rolled-back" and run.decisions[-1].traffic_after == 0


def test_equal_challenger_is_falsely_promoted_in_at_most_alpha_of_200_canaries():
    rates = outcome_rates(CFG, SCENARIOS["equal"], runs=200)
    assert rates["promotion_rate"] <= CFG.alpha


def test_equal_challenger_with_many_small_steps_still_within_alpha():
    """Ten times smaller steps: many more looks at the same data, still no more than alpha false
    promotions."""
    rates = outcome_rates(CFG, SCENARIOS["equal"], runs=200, impressions_per_step=2_000)
    assert rates["mean_steps"] > 15
    assert rates["promotion_rate"] <= CFG.alpha


@pytest.mark.parametrize("name,violation", [("errors", "error rate"), ("slow", "p99 latency")])
def test_failing_challenger_is_rolled_back_at_the_first_step_whatever_its_ctr(name, violation):
    for seed in range(20):
        run = simulate(CFG, SCENARIOS[name], seed=seed)
        assert run.outcome == "rolled-back" and len(run.decisions) == 1
        assert violation in run.decisions[0].reason and run.decisions[0].guardrails["passed"] is False


def test_controller_resumes_from_a_logged_state():
    run = simulate(CFG, SCENARIOS["better"], seed=1)
    middle = run.decisions[1]
    resumed = CanaryController(CFG, CanaryState.from_dict(json.loads(json.dumps(middle.state))))
    assert resumed.state.step == middle.step and resumed.traffic_percent == middle.traffic_after
    assert resumed.test.p_value == middle.test["p_value"]


def test_decisions_are_json_with_their_evidence():
    decision = simulate(CFG, SCENARIOS["equal"], seed=0).decisions[0]
    record = json.loads(json.dumps(decision.to_dict(), allow_nan=False))
    assert set(record["evidence"]) == {"serving", "ctr"}
    assert record["evidence"]["serving"]["challenger"]["requests"] > 0


def test_simulate_cli_reports_rates_and_a_timeline(capsys):
    assert main(["canary", "simulate", "--scenario", "slow", "--runs", "5", "--timeline"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rolled_back"] == 5 and printed["timeline"][0]["action"] == "rollback"


def test_kfp_component_compiles_with_the_config_as_its_only_input(tmp_path):
    from kfp import compiler

    from hyperrec.components.canary import canary_step

    out = tmp_path / "canary.yaml"
    compiler.Compiler().compile(canary_step, str(out))
    assert canary_step.python_func.__name__ == "canary_step"
    assert "config_yaml" in out.read_text()
