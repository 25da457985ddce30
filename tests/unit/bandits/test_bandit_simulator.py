"""The simulator on a slice of the real ml-latest-small data: bandits beat random by far; IPS/SNIPS estimated
from an epsilon-greedy log land on the simulator's exact truth; ``hyperrec bench bandits`` writes its
report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hyperrec.cli import main
from hyperrec.online.bandits.ope import (
    epsilon_target,
    estimate,
    greedy_target,
    read_log,
    uniform_target,
    write_log,
)
from hyperrec.online.bandits.settings import BanditConfig, SimulatorConfig
from hyperrec.online.bandits.simdata import SimulationData, load_simulation_data
from hyperrec.online.bandits.simulator import simulate, true_value

ROOT = Path(__file__).resolve().parents[3]
_CANDIDATES = [Path(os.environ["HYPERREC_DATASET_DIR"])] if "HYPERREC_DATASET_DIR" in os.environ else []
_CANDIDATES += [
    ROOT.parent / "shared/datasets/ml-latest-small",
    ROOT.parent.parent / "shared/datasets/ml-latest-small",
]
DATASET = next((p for p in _CANDIDATES if (p / "ratings.csv").exists()), None)

pytestmark = pytest.mark.skipif(DATASET is None, reason=f"ml-latest-small not found at {_CANDIDATES} "
                                                        "(set HYPERREC_DATASET_DIR)")

SIM = SimulatorConfig(max_users=150, steps=1500, k=5, seed=7)
BANDIT = BanditConfig(top_n=20, epsilon=0.1, budget=0.4, seed=7)


@pytest.fixture(scope="module")
def data() -> SimulationData:
    assert DATASET is not None
    return load_simulation_data(SIM, DATASET, top_n=BANDIT.top_n)


def test_the_simulated_users_come_from_the_real_data(data: SimulationData) -> None:
    assert len(data.users) == 150
    assert data.users_with_reachable_positive > 50
    user = data.users[0]
    assert len(user.candidates) == 20
    assert set(np.unique(user.attraction)) <= {SIM.attract_positive, SIM.attract_noise}
    assert {u.context.segment for u in data.users} - {None}, "segments come from hyperrec.data.segments"


def test_every_policy_has_far_less_regret_than_random(data: SimulationData) -> None:
    runs = {name: simulate(data, name, BANDIT, SIM)
            for name in ("random", "greedy", "epsilon_greedy", "ucb1", "thompson", "linucb")}
    random, greedy = runs.pop("random"), runs.pop("greedy")
    regrets = {name: round(run.regret / random.regret, 3) for name, run in runs.items()}
    for name, run in runs.items():
        assert run.regret < 0.7 * random.regret, regrets
        assert run.expected_ctr > 1.3 * greedy.expected_ctr, (name, run.expected_ctr, greedy.expected_ctr)
        assert run.degraded == 0
    assert greedy.expected_ctr > random.expected_ctr
    assert runs["epsilon_greedy"].new_item_exposure >= greedy.new_item_exposure


def test_the_same_seed_replays_the_same_run(data: SimulationData) -> None:
    first = simulate(data, "thompson", BANDIT, SIM.model_copy(update={"steps": 200}))
    second = simulate(data, "thompson", BANDIT, SIM.model_copy(update={"steps": 200}))
    assert first.clicks == second.clicks
    np.testing.assert_array_equal(first.regret_curve, second.regret_curve)


def test_ips_and_snips_from_an_epsilon_greedy_log_match_the_simulated_truth(
    data: SimulationData, tmp_path: Path
) -> None:
    logger = BANDIT.model_copy(update={"epsilon": 0.3})
    run = simulate(data, "epsilon_greedy", logger, SIM.model_copy(update={"steps": 4000}), log=True)
    path = tmp_path / "ope_log.jsonl"
    assert write_log(path, run.logged) == 4000
    logged = read_log(path)
    for target in (greedy_target, uniform_target, epsilon_target(0.5, BANDIT.budget)):
        truth = true_value(data, target, SIM.k, SIM.position_decay)
        found = estimate(logged, target)
        ips_se = (found.ips_high - found.ips_low) / (2 * 1.96)
        snips_se = (found.snips_high - found.snips_low) / (2 * 1.96)
        assert abs(found.ips - truth) < 3 * ips_se, (target, found, truth)
        assert abs(found.snips - truth) < 3 * snips_se, (target, found, truth)
        assert 0.8 < found.mean_weight < 1.2


def test_bench_bandits_writes_tables_log_and_report(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    code = main(["bench", "bandits", "--output-dir", str(out), "--policies", "ucb1",
                 "--set", f"data.dataset_dir={DATASET}", "--set", "bandit.simulator.max_users=60",
                 "--set", "bandit.simulator.steps=300"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["policies"]) == ["greedy", "ucb1", "random"]
    assert set(summary["ope"]) == {"greedy", "random", "epsilon_greedy(0.3)"}
    assert "regret / random's" in (out / "table.md").read_text()
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and "<table>" in report
    assert len(read_log(out / "ope_log.jsonl")) == 300


def test_bench_bandits_unknown_policy_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    code = main(["bench", "bandits", "--output-dir", str(tmp_path), "--policies", "softmax"])
    assert code == 2
