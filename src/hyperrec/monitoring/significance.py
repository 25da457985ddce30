"""Is a drift check's effect larger than the sampling noise of its two windows?

Permutation tests that reshuffle whole *users* between the windows (events of one user are not independent),
the exact-null p-value of a domain classifier's held-out AUC, and fast re-implementations of Evidently's
statistics so that hundreds of permutations stay cheap. Also registers the relative-rate-change drift method
with Evidently (used by the click-through-rate check).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

# --- a custom Evidently drift method for rates (click-through rate)
# -------------------------------------------
RELATIVE_RATE_CHANGE = "hyperrec_relative_rate_change"


def _relative_rate_change(
    reference_data: pd.Series, current_data: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    """|mean(current) - mean(reference)| / mean(reference) of a 0/1 column (the reference rate floored at
    0.1%)."""
    reference_rate = float(np.mean(reference_data))
    score = abs(float(np.mean(current_data)) - reference_rate) / max(reference_rate, 1e-3)
    return score, score >= threshold


register_stattest(
    StatTest(
        name=RELATIVE_RATE_CHANGE,
        display_name="relative rate change |cur - ref| / ref",
        allowed_feature_types=[ColumnType.Numerical],
        default_threshold=0.2,
    ),
    _relative_rate_change,
)


@dataclass
class Significance:
    """Deferred p-value of one check: ``(max_permutations, early_stop) -> (p_value, permutations run)``."""

    compute: Callable[[int, int], tuple[float, int | None]]
    null: str

    def __call__(self, max_permutations: int, early_stop: int) -> tuple[float, int | None]:
        return self.compute(max_permutations, early_stop)


class UnitShuffler:
    """Random reassignments of whole units (window-user pairs) to the reference side, unit counts kept."""

    def __init__(self, ref_units: np.ndarray, cur_units: np.ndarray, rng: np.random.Generator) -> None:
        ref_codes = pd.factorize(ref_units)[0]
        cur_codes = pd.factorize(cur_units)[0]
        self.n_ref = int(ref_codes.max()) + 1
        self.n_total = self.n_ref + int(cur_codes.max()) + 1
        self.codes = np.concatenate([ref_codes, cur_codes + self.n_ref])
        self.rng = rng

    def draw(self) -> np.ndarray:
        """A row mask of the permuted reference side."""
        chosen = np.zeros(self.n_total, dtype=bool)
        chosen[self.rng.permutation(self.n_total)[: self.n_ref]] = True
        return chosen[self.codes]


def sequential_p_value(
    observed: float, statistic: Callable[[np.ndarray], float], shuffler: UnitShuffler,
    max_permutations: int, early_stop: int,
) -> tuple[float, int]:
    """Besag-Clifford sequential permutation p-value: stop at ``early_stop`` exceedances, else run them all.

    Args:
        observed: the statistic on the real reference/current labels.
        statistic: the statistic as a function of a reference-row mask.
        shuffler: draws permuted masks (whole units at a time).
        max_permutations: the most permutations run.
        early_stop: the exceedances after which the run stops.

    Returns:
        The p-value and the permutations run.
    """
    tolerance = 1e-9 * max(1.0, abs(observed))
    exceed = 0
    for done in range(1, max_permutations + 1):
        exceed += bool(statistic(shuffler.draw()) >= observed - tolerance)
        if exceed >= early_stop:
            return exceed / done, done
    return (exceed + 1) / (max_permutations + 1), max_permutations


def normal_permutation_p_value(
    observed: float, statistic: Callable[[np.ndarray], float], shuffler: UnitShuffler,
    permutations: int, early_stop: int,
) -> tuple[float, int]:
    """P-value of an AUC from a normal fit to its user-permutation null (mean and sd of the permuted AUCs).

    An AUC is a U-statistic, close to normal; permuting whole users gives its spread including the clustering
    of items by user. A few dozen classifier fits then reach tail probabilities that hundreds of permutations
    would need empirically. Noise is still dismissed early (``early_stop`` permuted AUCs at the observed one).

    Args:
        observed: the AUC on the real reference/current labels.
        statistic: the AUC as a function of a reference-row mask.
        shuffler: draws permuted masks (whole users at a time).
        permutations: the permutations run without an early stop.
        early_stop: the permuted AUCs at or above ``observed`` after which the run stops.

    Returns:
        The p-value and the permutations run.
    """
    scores: list[float] = []
    exceed = 0
    for done in range(1, permutations + 1):
        scores.append(statistic(shuffler.draw()))
        exceed += bool(scores[-1] >= observed)
        if exceed >= early_stop:
            return exceed / done, done
    mean, sd = float(np.mean(scores)), float(np.std(scores, ddof=1))
    if sd <= 0:
        return (0.0 if observed > mean else 1.0), permutations
    return float(norm.sf((observed - mean) / sd)), permutations


def fast_statistic(method: str, categorical: bool, values: np.ndarray) -> Callable[[np.ndarray], float]:
    """The Evidently statistic ``method`` over ``values``, as a function of the reference-row mask.

    Exact re-implementations (tests compare them with Evidently) that reuse one sort / one category coding, so
    that hundreds of permutations stay cheap: normed Wasserstein is scipy's CDF formula over the pooled sorted
    values divided by max(std(reference), 0.001); Jensen-Shannon is scipy's distance (natural log) of the
    category shares; the rate change is |mean(cur) - mean(ref)| / max(mean(ref), 0.001).

    Args:
        method: the Evidently method: "wasserstein", "jensenshannon" or the relative rate change.
        categorical: whether ``values`` is categorical (Wasserstein applies to numbers only).
        values: the pooled values, reference rows and current rows.

    Returns:
        The statistic as a function of a boolean reference-row mask.

    Raises:
        ValueError: no permutation statistic exists for ``method``.
    """
    if method == "wasserstein" and not categorical:
        return _wasserstein(values.astype("float64"))
    if method == "jensenshannon":
        return _jensen_shannon(values)
    if method == RELATIVE_RATE_CHANGE:
        numbers = values.astype("float64")

        def rate_change(mask: np.ndarray) -> float:
            return _relative_rate_change(numbers[mask], numbers[~mask], ColumnType.Numerical, 0.0)[0]

        return rate_change
    raise ValueError(f"no permutation statistic for method {method!r}")


def _wasserstein(numbers: np.ndarray) -> Callable[[np.ndarray], float]:
    order = np.argsort(numbers, kind="mergesort")
    deltas = np.diff(numbers[order])

    def wasserstein(mask: np.ndarray) -> float:
        ref = mask[order]
        n_ref = ref.sum()
        ref_cdf = np.cumsum(ref)[:-1] / n_ref
        cur_cdf = np.cumsum(~ref)[:-1] / (len(ref) - n_ref)
        distance = float(np.sum(np.abs(ref_cdf - cur_cdf) * deltas))
        return distance / max(float(np.std(numbers[mask])), 0.001)

    return wasserstein


def _jensen_shannon(values: np.ndarray) -> Callable[[np.ndarray], float]:
    codes, uniques = pd.factorize(values)
    k = len(uniques)

    def jensen_shannon(mask: np.ndarray) -> float:
        ref = np.bincount(codes[mask], minlength=k) / mask.sum()
        cur = np.bincount(codes[~mask], minlength=k) / (~mask).sum()
        return float(jensenshannon(ref, cur))

    return jensen_shannon


def auc_p_value(auc: float, n_reference: int, n_current: int) -> float:
    """One-sided p-value of a held-out AUC under 'same distribution' (Mann-Whitney null, normal
    approximation).

    Evidently's domain classifier scores a random half of the pooled rows; under the null hypothesis its
    scores are independent of the labels, so the AUC is distributed as U / (n1 n2) with n1, n2 the held-out
    counts.
    """
    n1, n2 = max(n_reference / 2, 1.0), max(n_current / 2, 1.0)
    sd = math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    return float(norm.sf((auc - 0.5) / sd))
