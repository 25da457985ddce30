"""Sample size per arm of a two-arm CTR test, for a baseline CTR, a minimum detectable effect, α and power.

The effect is Cohen's h, the difference of arcsine-transformed proportions (``h = 2·asin√p₂ − 2·asin√p₁``),
whose estimate has variance ``1/n₁ + 1/n₂`` whatever the baseline; that is what statsmodels'
``proportion_effectsize`` + ``NormalIndPower`` use, so ``hyperrec ab plan`` can be checked against it.

- closed form (one tail of the two-sided test ignored): ``n₁ = (1 + 1/r) · ((z₁₋α/₂ + z₁₋β) / h)²``;
- exact: the ``n₁`` at which the normal test's power, both tails counted, equals the target (what statsmodels
  solves numerically). The two differ by far less than 1 % at any useful power; the plan reports the exact
  one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy.optimize import brentq
from scipy.stats import norm

Alternative = Literal["two-sided", "larger"]


@dataclass(frozen=True)
class SamplePlan:
    """The sample sizes of one A/B test and what they were computed from."""

    baseline_ctr: float
    target_ctr: float
    mde_relative: float
    alpha: float
    power: float
    ratio: float  #: n₂ / n₁ (challenger / control)
    alternative: str
    effect_size_h: float
    n_control: int
    n_treatment: int
    n_control_closed_form: float

    @property
    def n_total(self) -> int:
        return self.n_control + self.n_treatment

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_total": self.n_total}


def cohens_h(p1: float, p2: float) -> float:
    """``2·asin√p₂ − 2·asin√p₁``: the effect of moving a proportion from ``p1`` to ``p2``."""
    return 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))


def _critical(alpha: float, alternative: Alternative) -> float:
    return float(norm.ppf(1.0 - alpha / 2.0)) if alternative == "two-sided" else float(norm.ppf(1.0 - alpha))


def normal_power(h: float, n1: float, *, alpha: float, ratio: float = 1.0,
                 alternative: Alternative = "two-sided") -> float:
    """Power of the two-sample normal test of an effect ``h`` with ``n1`` and ``ratio·n1`` observations."""
    shift = abs(h) / math.sqrt(1.0 / n1 + 1.0 / (ratio * n1))
    crit = _critical(alpha, alternative)
    power = float(norm.cdf(shift - crit))
    if alternative == "two-sided":
        power += float(norm.cdf(-shift - crit))
    return power


def closed_form_n1(h: float, *, alpha: float, power: float, ratio: float = 1.0,
                   alternative: Alternative = "two-sided") -> float:
    """``(1 + 1/r) · ((z_crit + z_power) / h)²`` (the textbook formula, far tail ignored)."""
    return (1.0 + 1.0 / ratio) * ((_critical(alpha, alternative) + float(norm.ppf(power))) / h) ** 2


def plan_sample_size(baseline_ctr: float, mde_relative: float, *, alpha: float = 0.05, power: float = 0.8,
                     ratio: float = 1.0, alternative: Alternative = "two-sided") -> SamplePlan:
    """Observations (impressions) per arm to detect ``baseline · (1 + mde_relative)`` with the given power.

    Args:
        baseline_ctr: the control CTR, in (0, 1).
        mde_relative: the minimum detectable relative lift (e.g. 0.1 for +10 %).
        alpha: the significance level.
        power: the wanted power.
        ratio: treatment size / control size.
        alternative: "two-sided" or "larger".

    Returns:
        The inputs, Cohen's h, the exact (normal-power) sizes of both arms and the closed-form control size.
    """
    _check_inputs(baseline_ctr, mde_relative, alpha, power, ratio)
    target = baseline_ctr * (1.0 + mde_relative)
    h = cohens_h(baseline_ctr, target)
    approx = closed_form_n1(h, alpha=alpha, power=power, ratio=ratio, alternative=alternative)

    def shortfall(n1: float) -> float:
        return normal_power(h, n1, alpha=alpha, ratio=ratio, alternative=alternative) - power

    exact = brentq(shortfall, 1e-6 * approx, 2.0 * approx + 10.0, xtol=1e-9, rtol=1e-12)
    n1 = math.ceil(exact - 1e-9)
    return SamplePlan(
        baseline_ctr=baseline_ctr, target_ctr=target, mde_relative=mde_relative, alpha=alpha, power=power,
        ratio=ratio, alternative=alternative, effect_size_h=h, n_control=n1,
        n_treatment=math.ceil(ratio * exact - 1e-9), n_control_closed_form=approx,
    )


def _check_inputs(baseline: float, mde: float, alpha: float, power: float, ratio: float) -> None:
    if not 0.0 < baseline < 1.0:
        raise ValueError(f"baseline CTR must lie in (0, 1), got {baseline}")
    if mde == 0.0 or not 0.0 < baseline * (1.0 + mde) < 1.0:
        raise ValueError(f"minimum detectable effect {mde:+} moves the CTR to {baseline * (1 + mde)}, "
                         "which must differ from the baseline and lie in (0, 1)")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    if not alpha < power < 1.0:
        raise ValueError(f"power must lie in (alpha, 1), got {power}")
    if ratio <= 0.0:
        raise ValueError(f"ratio must be positive, got {ratio}")
