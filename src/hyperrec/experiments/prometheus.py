"""Per-revision serving metrics from Prometheus, queried with PromQL over its HTTP API (``/api/v1/query``).

The series are those ``hyperrec.serving.metrics`` exports; a revision is selected by one label
(``canary.prometheus.revision_label``), which is either a target label (a scrape config relabels it from the
pod, e.g. from the Knative revision or the InferenceService name) or a metric label set by an embedded server.
Per step, over the window ``W`` of one step:

- requests: ``sum(increase(hyperrec_stage_seconds_count{stage="preprocess", R}[W]))`` (every recommend
  request passes preprocess once);
- errors: ``sum(increase(hyperrec_errors_total{kind=~"predictor|internal|not_ready", R}[W]))`` (a client's
  invalid request is not the revision's fault);
- degraded: ``sum(increase(hyperrec_degraded_total{R}[W]))``;
- p99: ``histogram_quantile(0.99, sum by (le) (rate(hyperrec_stage_seconds_bucket{stage=S, R}[W])))``.

A query with no series (the revision served nothing) is 0 for counts and NaN for the p99.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from hyperrec.errors import HyperrecError
from hyperrec.experiments.evidence import ServingWindow, StepEvidence
from hyperrec.experiments.sequential import ArmCounts
from hyperrec.experiments.settings import PrometheusConfig

SERVER_ERROR_KINDS = "predictor|internal|not_ready"


class PrometheusError(HyperrecError):
    """Prometheus could not be reached or refused a query."""


class PromQLClient:
    """Instant queries against one Prometheus server."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of an instant query at the server's now.

        Args:
            expr: the PromQL expression.

        Returns:
            The ``data.result`` samples.

        Raises:
            PrometheusError: the server cannot be reached, refuses the query, or answers with no vector.
        """
        data = urllib.parse.urlencode({"query": expr}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=data, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"Prometheus refused {expr!r}: {exc.code} {_error_text(exc)}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"cannot query Prometheus at {self.url}: {exc}") from None
        if payload.get("status") != "success" or payload["data"].get("resultType") != "vector":
            raise PrometheusError(f"Prometheus answered {expr!r} with {str(payload)[:300]}")
        return payload["data"]["result"]

    def scalar(self, expr: str, *, empty: float = 0.0) -> float:
        """The single value of an aggregated query; ``empty`` when it has no series."""
        result = self.query(expr)
        if not result:
            return empty
        if len(result) > 1:
            raise PrometheusError(f"{expr!r} returned {len(result)} series; expected one (aggregate it)")
        return float(result[0]["value"][1])


def serving_queries(cfg: PrometheusConfig, revision: str) -> dict[str, str]:
    """The four PromQL expressions of one revision (see the module doc).

    Args:
        cfg: the Prometheus settings (revision label, window, latency stage).
        revision: the revision's label value.

    Returns:
        ``requests``, ``errors``, ``degraded`` and ``p99_seconds`` -> PromQL expression.
    """
    selector = f'{cfg.revision_label}="{revision}"'
    window = cfg.window
    return {
        "requests": f'sum(increase(hyperrec_stage_seconds_count{{stage="preprocess",{selector}}}[{window}]))',
        "errors": (
            f'sum(increase(hyperrec_errors_total{{kind=~"{SERVER_ERROR_KINDS}",{selector}}}[{window}]))'
        ),
        "degraded": f"sum(increase(hyperrec_degraded_total{{{selector}}}[{window}]))",
        "p99_seconds": (
            f"histogram_quantile(0.99, sum by (le) (rate(hyperrec_stage_seconds_bucket"
            f'{{stage="{cfg.latency_stage}",{selector}}}[{window}])))'
        ),
    }


def serving_window(client: PromQLClient, cfg: PrometheusConfig, revision: str) -> ServingWindow:
    """One revision's metrics over the last window."""
    queries = serving_queries(cfg, revision)
    values = {name: client.scalar(expr, empty=math.nan if name == "p99_seconds" else 0.0)
              for name, expr in queries.items()}
    return ServingWindow(**values)


class PrometheusEvidence:
    """An ``EvidenceSource``: guardrail metrics from Prometheus, cumulative CTR counts from ``read_ctr``."""

    def __init__(self, client: PromQLClient, cfg: PrometheusConfig,
                 read_ctr: Callable[[], tuple[ArmCounts, ArmCounts]]) -> None:
        self.client, self.cfg, self.read_ctr = client, cfg, read_ctr

    def read(self, traffic_percent: int) -> StepEvidence:
        champion_ctr, challenger_ctr = self.read_ctr()
        return StepEvidence(
            champion=serving_window(self.client, self.cfg, self.cfg.champion),
            challenger=serving_window(self.client, self.cfg, self.cfg.challenger),
            champion_ctr=champion_ctr, challenger_ctr=challenger_ctr,
        )


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", ""))
    except (ValueError, OSError):
        return exc.reason
