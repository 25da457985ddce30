"""Hard limits on the challenger's serving health, checked before any CTR statistics.

A challenger that errors, answers slowly or falls back to popularity is rolled back at the first step that
shows it, whatever its CTR: a click-through gain never buys an outage. Limits are absolute (error rate,
degraded ratio, p99) plus one relative to the champion in the same window (p99 ratio), so a uniformly slow
cluster does not roll back every challenger. A window with fewer than ``min_requests`` challenger requests is
too small to judge (a single error would be a 100 % error rate); the step then holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hyperrec.experiments.evidence import ServingWindow
from hyperrec.experiments.settings import GuardrailConfig


@dataclass(frozen=True)
class GuardrailResult:
    """``passed`` None: not enough traffic to judge; False: ``violations`` say which limits broke."""

    passed: bool | None
    violations: tuple[str, ...]


def check_guardrails(
    champion: ServingWindow, challenger: ServingWindow, limits: GuardrailConfig
) -> GuardrailResult:
    """Every violated limit, each as one line with the measured value and the limit.

    Args:
        champion: the champion's serving window (for the p99 ratio).
        challenger: the challenger's serving window.
        limits: the guardrail limits.

    Returns:
        ``passed`` True or False with the violations, or None (not judged) below ``limits.min_requests``.
    """
    if challenger.requests < limits.min_requests:
        return GuardrailResult(None, (f"only {challenger.requests:g} challenger requests in the step "
                                      f"(< {limits.min_requests}); guardrails not judged",))
    violations = []
    if challenger.error_rate > limits.max_error_rate:
        violations.append(f"error rate {challenger.error_rate:.4f} > {limits.max_error_rate}")
    if challenger.degraded_ratio > limits.max_degraded_ratio:
        violations.append(f"degraded ratio {challenger.degraded_ratio:.4f} > {limits.max_degraded_ratio}")
    p99 = challenger.p99_seconds
    if not math.isnan(p99):
        if p99 > limits.max_p99_seconds:
            violations.append(f"p99 latency {p99:.4f}s > {limits.max_p99_seconds}s")
        if not math.isnan(champion.p99_seconds) and champion.p99_seconds > 0 \
                and p99 > limits.max_p99_ratio * champion.p99_seconds:
            violations.append(f"p99 latency {p99:.4f}s > {limits.max_p99_ratio} x champion's "
                              f"{champion.p99_seconds:.4f}s")
    return GuardrailResult(not violations, tuple(violations))
