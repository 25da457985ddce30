"""The mixture SPRT: its formulas, its always-valid guarantee under looks after every batch, its sizing."""

import math

import numpy as np
import pytest

from hyperrec.experiments.sequential import (
    ArmCounts,
    MixtureSequentialTest,
    ci_radius,
    log_mixture_ratio,
    max_sample_size,
)


def test_mixture_ratio_and_interval_by_hand():
    v, tau, theta = 1e-5, 0.01, 0.01
    by_hand = 0.5 * math.log(v / (v + tau**2)) + theta**2 * tau**2 / (2 * v * (v + tau**2))
    assert log_mixture_ratio(theta, v, tau) == pytest.approx(by_hand)
    r = ci_radius(v, tau, 0.05)
    # on the interval's edge the ratio is exactly 1/alpha
    assert log_mixture_ratio(r, v, tau) == pytest.approx(math.log(20.0))


def test_interval_and_p_value_agree():
    test = MixtureSequentialTest(tau=0.01, alpha=0.05)
    result = test.look(ArmCounts(20000, 1000), ArmCounts(20000, 1200))
    assert result.verdict == "better" and result.p_value <= 0.05 and result.ci_low > 0


def test_no_clicks_or_no_impressions_is_no_evidence():
    test = MixtureSequentialTest(tau=0.01, alpha=0.05)
    result = test.look(ArmCounts(0, 0), ArmCounts(100, 3))
    assert result.p_value == 1.0 and result.verdict == "inconclusive"


def test_type_one_error_under_peeking_after_every_batch():
    """Equal CTRs, 40 looks each: the always-valid test rejects in <= alpha of 400 runs; a naive z-test does
    not."""
    rng = np.random.default_rng(7)
    runs, looks, batch, ctr = 400, 40, 500, 0.05
    msprt_rejections = naive_rejections = 0
    for _ in range(runs):
        test = MixtureSequentialTest(tau=0.01, alpha=0.05)
        a = b = ca = cb = 0
        naive = False
        for _ in range(looks):
            a += batch
            b += batch
            ca += rng.binomial(batch, ctr)
            cb += rng.binomial(batch, ctr)
            result = test.look(ArmCounts(a, ca), ArmCounts(b, cb))
            naive |= abs(result.difference) / math.sqrt(result.variance) > 1.959964
        msprt_rejections += result.p_value <= 0.05
        naive_rejections += naive
    assert msprt_rejections / runs <= 0.05
    assert naive_rejections / runs > 0.15  # why a fixed-horizon test cannot be peeked at


def test_max_sample_size_gives_the_power_it_promises():
    n = max_sample_size(0.05, 0.2, alpha=0.05, power=0.8)
    rng = np.random.default_rng(3)
    detected = 0
    for _ in range(300):
        test = MixtureSequentialTest(tau=0.01, alpha=0.05)
        result = test.look(ArmCounts(n, rng.binomial(n, 0.05)), ArmCounts(n, rng.binomial(n, 0.06)))
        detected += result.verdict == "better"
    assert detected / 300 >= 0.75  # 0.8 planned; the sizing uses the pooled CTR, 300 runs of noise
    assert n > 8143  # larger than the fixed-horizon plan: the price of looking at any time
