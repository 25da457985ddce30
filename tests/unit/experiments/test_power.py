"""`hyperrec ab plan` sample sizes against statsmodels and a hand calculation (the issue asks for 1 %)."""

import json
import math

import pytest

from hyperrec.cli import main
from hyperrec.experiments.power import closed_form_n1, cohens_h, plan_sample_size

CASES = [  # baseline CTR, relative MDE, alpha, power, ratio, alternative
    (0.05, 0.2, 0.05, 0.8, 1.0, "two-sided"),
    (0.05, 0.1, 0.05, 0.8, 1.0, "two-sided"),
    (0.02, 0.05, 0.01, 0.9, 1.0, "two-sided"),
    (0.10, -0.1, 0.05, 0.8, 1.0, "two-sided"),
    (0.05, 0.2, 0.05, 0.8, 9.0, "two-sided"),
    (0.30, 0.05, 0.10, 0.95, 1.0, "larger"),
]


@pytest.mark.parametrize("baseline,mde,alpha,power,ratio,alternative", CASES)
def test_plan_matches_statsmodels_within_one_percent(baseline, mde, alpha, power, ratio, alternative):
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    plan = plan_sample_size(baseline, mde, alpha=alpha, power=power, ratio=ratio, alternative=alternative)
    effect = proportion_effectsize(baseline * (1 + mde), baseline)  # treatment minus control
    expected = NormalIndPower().solve_power(effect_size=abs(effect), alpha=alpha, power=power, ratio=ratio,
                                            alternative=alternative)
    assert plan.effect_size_h == pytest.approx(effect, rel=1e-12)
    assert abs(plan.n_control - expected) / expected < 0.01
    assert plan.n_control == math.ceil(expected - 1e-6)
    assert plan.n_treatment == math.ceil(ratio * expected - 1e-6)


def test_plan_matches_zt_ind_solve_power():
    from statsmodels.stats.power import zt_ind_solve_power
    from statsmodels.stats.proportion import proportion_effectsize

    expected = zt_ind_solve_power(effect_size=proportion_effectsize(0.06, 0.05), alpha=0.05, power=0.8)
    assert plan_sample_size(0.05, 0.2).n_control == math.ceil(expected)


def test_hand_calculation_of_the_textbook_case():
    # p1 = 5 %, p2 = 6 %: h = 2 asin(sqrt .06) - 2 asin(sqrt .05) = 0.0439073...
    h = 2 * math.asin(math.sqrt(0.06)) - 2 * math.asin(math.sqrt(0.05))
    assert cohens_h(0.05, 0.06) == pytest.approx(h)
    # n = 2 * ((1.959964 + 0.841621) / h)^2 = 8142.6 per arm
    by_hand = 2 * ((1.959964 + 0.841621) / h) ** 2
    assert by_hand == pytest.approx(8142.6, abs=0.2)
    assert closed_form_n1(h, alpha=0.05, power=0.8) == pytest.approx(by_hand, rel=1e-6)
    plan = plan_sample_size(0.05, 0.2)
    assert abs(plan.n_control - by_hand) / by_hand < 0.01
    assert plan.n_control == 8143 and plan.n_total == 16286


def test_ab_plan_cli_prints_the_plan(capsys):
    assert main(["ab", "plan", "--baseline", "0.05", "--mde", "0.2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_control"] == 8143 and printed["target_ctr"] == pytest.approx(0.06)


@pytest.mark.parametrize("args,field", [(["--baseline", "1.5", "--mde", "0.1"], "baseline CTR"),
                                        (["--baseline", "0.05", "--mde", "0"], "minimum detectable effect"),
                                        (["--baseline", "0.05", "--mde", "0.1", "--power", "0.01"], "power")])
def test_ab_plan_rejects_bad_input_with_exit_2(args, field, capsys):
    assert main(["ab", "plan", *args]) == 2
    assert field in capsys.readouterr().err
