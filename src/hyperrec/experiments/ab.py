"""``hyperrec ab analyze``: per-variant CTR, the sequential-safe verdict and the checks of the split itself.

- **CTR** per variant with a Wilson score interval (fixed-horizon, for reading the size of the effect);
- **verdict** from the mixture SPRT (``sequential``), valid even if the experiment was looked at every day;
- **sample-ratio mismatch**: a chi-square goodness-of-fit test of the units per variant (requests by default,
  the unit KServe's canary randomizes; users when assignment is per user) against the configured split. A
  p-value below ``srm_threshold`` (0.001, the usual bar) means the split is broken and the CTRs are not
  comparable, whatever they say;
- **stickiness**: the share of users who saw only one variant. A request-level split (KServe canary) shows
  most returning users both variants, which blurs per-user effects; a per-user split should give 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from scipy.stats import chisquare, norm

from hyperrec.experiments.ctr import FeedbackTally
from hyperrec.experiments.sequential import ArmCounts, MixtureSequentialTest

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class AnalysisSpec:
    """Which variants to compare, and the split and test settings."""

    control: str = "champion"
    treatment: str = "challenger"
    treatment_percent: float = 50.0
    unit: Literal["request", "user"] = "request"
    alpha: float = 0.05
    mde_relative: float = 0.2
    srm_threshold: float = SRM_THRESHOLD


def wilson_interval(clicks: int, impressions: int, alpha: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (sensible at 0 or few clicks, unlike the Wald interval)."""
    if impressions == 0:
        return 0.0, 1.0
    z = float(norm.ppf(1.0 - alpha / 2.0))
    p = clicks / impressions
    denominator = 1.0 + z * z / impressions
    centre = (p + z * z / (2 * impressions)) / denominator
    half = z * math.sqrt(p * (1 - p) / impressions + z * z / (4 * impressions * impressions)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_ratio_mismatch(
    control_units: int, treatment_units: int, treatment_percent: float
) -> dict[str, Any]:
    """Chi-square test of observed units per variant against the intended split."""
    total = control_units + treatment_units
    if total == 0:
        return {"chi2": None, "p_value": None, "expected_treatment_share": treatment_percent / 100.0,
                "observed_treatment_share": None}
    share = treatment_percent / 100.0
    result = chisquare([control_units, treatment_units], f_exp=[total * (1 - share), total * share])
    return {
        "chi2": float(result.statistic),
        "p_value": float(result.pvalue),
        "expected_treatment_share": share,
        "observed_treatment_share": treatment_units / total,
    }


def stickiness(tally: FeedbackTally, variants: tuple[str, ...]) -> dict[str, Any]:
    """Users seen in exactly one of ``variants`` vs in several."""
    seen = [names & set(variants) for names in tally.variants_of_user.values()]
    seen = [names for names in seen if names]
    mixed = sum(len(names) > 1 for names in seen)
    return {"users": len(seen), "users_in_several_variants": mixed,
            "sticky_share": (len(seen) - mixed) / len(seen) if seen else None}


def analyze(tally: FeedbackTally, spec: AnalysisSpec) -> dict[str, Any]:
    """The whole report (JSON-ready).

    Args:
        tally: the feedback events grouped by variant.
        spec: the variants compared, the intended split, the SRM unit and the test settings.

    Returns:
        ``variants`` (per-variant CTR with its interval), ``sequential`` (the test's verdict), ``srm``,
        ``stickiness``, and the counts of unlabelled records and unattributed clicks.
    """
    per_variant = {name: _variant_report(tally, name, spec.alpha) for name in (spec.control, spec.treatment)}
    control, treatment = tally.counts(spec.control), tally.counts(spec.treatment)
    srm = sample_ratio_mismatch(per_variant[spec.control][f"{spec.unit}s"],
                                per_variant[spec.treatment][f"{spec.unit}s"], spec.treatment_percent)
    srm["unit"] = spec.unit
    srm["mismatch"] = srm["p_value"] is not None and srm["p_value"] < spec.srm_threshold
    return {
        "variants": per_variant,
        "sequential": _sequential(control, treatment, spec),
        "srm": srm,
        "stickiness": stickiness(tally, (spec.control, spec.treatment)),
        "unlabelled_records": tally.unlabelled,
        "unattributed_clicks": tally.unattributed_clicks,
    }


def _variant_report(tally: FeedbackTally, name: str, alpha: float) -> dict[str, Any]:
    counts = tally.counts(name)
    events = tally.variants.get(name)
    low, high = wilson_interval(counts.clicks, counts.impressions, alpha)
    return {"users": len(events.users) if events else 0, "requests": len(events.requests) if events else 0,
            "impressions": counts.impressions, "clicks": counts.clicks, "ctr": counts.ctr,
            "ctr_ci": [low, high]}


def _sequential(control: ArmCounts, treatment: ArmCounts, spec: AnalysisSpec) -> dict[str, Any]:
    """One look of the mSPRT at the final counts (its p-value is valid however often it was looked at)."""
    if control.impressions == 0 or treatment.impressions == 0 or control.clicks == 0:
        return {"verdict": "inconclusive", "reason": "a variant has no impressions or the control no clicks"}
    tau = control.ctr * spec.mde_relative
    result = MixtureSequentialTest(tau=tau, alpha=spec.alpha).look(control, treatment)
    return {**result.to_dict(), "tau": tau, "alpha": spec.alpha,
            "relative_difference": result.difference / control.ctr}
