"""A CTR test that stays valid however often it is looked at: the mixture SPRT (mSPRT).

Why not a fixed-horizon z-test: the controller looks after every step and acts on what it sees; peeking at a
z-test that way inflates the false-promotion rate far beyond α. The mSPRT (Robbins 1970; Johari, Pekelis &
Walsh, "Always valid inference", 2017) mixes the likelihood ratio of the CTR difference ``θ = CTR_challenger −
CTR_champion`` over a normal prior ``θ ~ N(0, τ²)``. For an estimate ``θ̂`` with variance ``v``:

    Λ = √(v / (v + τ²)) · exp(θ̂² τ² / (2 v (v + τ²)))

``Λ`` is a martingale under ``θ = 0``, so by Ville's inequality ``P(sup Λ ≥ 1/α) ≤ α``: the always-valid
p-value ``min(1, 1/Λ)`` (kept as a running minimum) and the always-valid interval ``θ̂ ± r``,

    r = √(v (v + τ²) / τ² · (2 ln(1/α) + ln((v + τ²) / v)))

can be read at every look. ``τ`` is set to the minimum detectable effect (the scale of effects the test is
built to find). ``max_sample_size`` is the power analysis: the challenger impressions at which an effect of
the MDE crosses the boundary with the requested power; past it the controller stops without a promotion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import norm


@dataclass(frozen=True)
class ArmCounts:
    """Cumulative impressions and clicks of one revision since the canary started."""

    impressions: int
    clicks: int

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class SequentialResult:
    """The test after one look."""

    difference: float  #: θ̂ = CTR_challenger − CTR_champion
    variance: float
    p_value: float  #: always valid: min over all looks so far of 1/Λ
    ci_low: float  #: always-valid interval, intersected over the looks so far
    ci_high: float
    verdict: str  #: "better", "worse" or "inconclusive" at level α

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pooled_variance(champion: ArmCounts, challenger: ArmCounts) -> float:
    """Variance of θ̂ under a common CTR (stable when one arm has no clicks yet)."""
    n1, n2 = champion.impressions, challenger.impressions
    if n1 == 0 or n2 == 0:
        return math.inf
    pooled = (champion.clicks + challenger.clicks) / (n1 + n2)
    return pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)


def log_mixture_ratio(difference: float, variance: float, tau: float) -> float:
    """``ln Λ`` of the normal-mixture SPRT."""
    if not math.isfinite(variance) or variance <= 0.0:
        return 0.0
    tau2 = tau * tau
    return 0.5 * math.log(variance / (variance + tau2)) + difference**2 * tau2 / (
        2.0 * variance * (variance + tau2)
    )


def ci_radius(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the always-valid (1 − α) interval for θ."""
    if not math.isfinite(variance) or variance <= 0.0:
        return math.inf
    tau2 = tau * tau
    return math.sqrt(variance * (variance + tau2) / tau2 * (2.0 * math.log(1.0 / alpha)
                                                            + math.log((variance + tau2) / variance)))


class MixtureSequentialTest:
    """One running mSPRT on cumulative counts; ``look`` after every step, in order."""

    def __init__(self, *, tau: float, alpha: float) -> None:
        if tau <= 0.0 or not 0.0 < alpha < 1.0:
            raise ValueError(f"tau must be > 0 and alpha in (0, 1); got tau={tau}, alpha={alpha}")
        self.tau, self.alpha = tau, alpha
        self.p_value, self.ci_low, self.ci_high = 1.0, -math.inf, math.inf

    def look(self, champion: ArmCounts, challenger: ArmCounts) -> SequentialResult:
        """Update with the cumulative counts so far and say what can be concluded now."""
        difference = challenger.ctr - champion.ctr
        variance = pooled_variance(champion, challenger)
        self.p_value = min(
            self.p_value, math.exp(-max(log_mixture_ratio(difference, variance, self.tau), 0.0))
        )
        radius = ci_radius(variance, self.tau, self.alpha)
        self.ci_low = max(self.ci_low, difference - radius)
        self.ci_high = min(self.ci_high, difference + radius)
        verdict = "better" if self.ci_low > 0.0 else "worse" if self.ci_high < 0.0 else "inconclusive"
        return SequentialResult(difference, variance, self.p_value, self.ci_low, self.ci_high, verdict)


def max_sample_size(baseline_ctr: float, mde_relative: float, *, alpha: float, power: float) -> int:
    """Impressions per arm at which an MDE-sized improvement crosses the mSPRT boundary with ``power``.

    Equal arms are assumed; an unequal split only gives the larger arm more data, so the planned size is
    conservative for the challenger's arm. ``τ`` = the absolute MDE, as ``MixtureSequentialTest`` uses.

    Args:
        baseline_ctr: the control CTR.
        mde_relative: the minimum detectable relative lift.
        alpha: the significance level of the test.
        power: the wanted probability of crossing the boundary.

    Returns:
        The smallest such number of impressions per arm (found by doubling, then bisection).
    """
    delta = baseline_ctr * abs(mde_relative)
    target = baseline_ctr * (1.0 + mde_relative)
    pooled = (baseline_ctr + target) / 2.0
    z_power = float(norm.ppf(power))

    def detects(n: int) -> bool:
        variance = 2.0 * pooled * (1.0 - pooled) / n
        return (
            delta / math.sqrt(variance) - ci_radius(variance, delta, alpha) / math.sqrt(variance) >= z_power
        )

    high = 2
    while not detects(high):
        high *= 2
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if detects(middle) else (middle, high)
    return high
