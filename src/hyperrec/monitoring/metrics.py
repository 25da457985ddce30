"""Prometheus gauges of a drift check, pushed to a Pushgateway: the dashboard's drift status and the
DriftDetected alert read them.

``hyperrec drift`` runs as a CronJob whose pod ends minutes after it starts, so Prometheus cannot scrape it;
Prometheus' answer for such batch jobs is the Pushgateway, which keeps the last pushed values until the next
push. The gauges live in their own registry (never the serving default registry), grouped under job
``hyperrec-drift``; Prometheus scrapes the Pushgateway with ``honor_labels`` so the job label stays.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

logger = logging.getLogger(__name__)

JOB = "hyperrec-drift"
DRIFT_DETECTED = "hyperrec_drift_detected"
CHECK_DRIFTED = "hyperrec_drift_check_drifted"
LAST_CHECK = "hyperrec_drift_last_check_timestamp_seconds"
QUALITY_BELOW_FLOOR = "hyperrec_drift_quality_below_floor"


def drift_registry(result: Any) -> CollectorRegistry:
    """A registry holding one drift result (a ``hyperrec.monitoring.results.DriftResult``) as gauges.

    Args:
        result: the drift result.

    Returns:
        A fresh registry with drift-detected, per-check drift, last-check time and quality-below-floor gauges.
    """
    registry = CollectorRegistry()
    Gauge(DRIFT_DETECTED, "1 when the last drift check found drift, else 0.", registry=registry).set(
        int(bool(result.drift_detected))
    )
    per_check = Gauge(
        CHECK_DRIFTED, "1 when this check of the last drift run drifted.", ["check"], registry=registry
    )
    for name, check in result.checks.items():
        per_check.labels(check=name).set(int(bool(check.drift)))
    Gauge(LAST_CHECK, "Unix time the last drift check finished.", registry=registry).set(
        datetime.fromisoformat(result.generated_at).timestamp()
    )
    Gauge(QUALITY_BELOW_FLOOR, "1 when the online quality of the last drift run is below its floor.",
          registry=registry).set(int(result.quality.get("status") == "below_floor"))
    return registry


def push_drift_metrics(result: Any, gateway: str) -> None:
    """Replace the hyperrec-drift group on the Pushgateway with this result (PUT: stale checks disappear)."""
    push_to_gateway(gateway, job=JOB, registry=drift_registry(result), timeout=10)
    logger.info("pushed drift gauges to %s (job %s)", gateway, JOB)
