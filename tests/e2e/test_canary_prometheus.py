"""The canary controller against the real Prometheus server (Debian's ``prometheus``) on 127.0.0.1.

Two /metrics endpoints (champion, challenger) export hyperrec.serving.metrics' real metric objects; Prometheus
scrapes them every second with a ``revision`` target label, as a cluster's scrape config would; the controller
reads its evidence with the same PromQL it sends on a cluster, and the CTR from a real feedback log. Bounded
in steps: each wait polls Prometheus a bounded number of times for a condition, never a fixed sleep.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from polling import poll
from prometheus_support import prometheus_binary, start_prometheus

from hyperrec.experiments.controller import CanaryController
from hyperrec.experiments.ctr import tally_feedback
from hyperrec.experiments.prometheus import PrometheusEvidence, serving_queries
from hyperrec.experiments.settings import CanaryConfig
from hyperrec.online.feedback import FeedbackLog, read_feedback

SERVER = Path(__file__).with_name("canary_metrics_server.py")
HISTORY_REQUESTS = 10_000  #: what canary_metrics_server.py served before the first scrape


@pytest.fixture
def prometheus(tmp_path):
    """(client, {revision: metrics URL}) with Prometheus scraping both revisions every second."""
    binary = prometheus_binary()
    servers, ports = [], {}
    for revision in ("champion", "challenger"):
        proc = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
        servers.append(proc)
        ports[revision] = int(proc.stdout.readline())
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "hyperrec-transformer",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"revision": revision}}
                    for revision, port in ports.items()
                ],
            }
        ],
    }
    server, client, port = start_prometheus(binary, tmp_path, config)
    try:
        poll(lambda: _ready(port), "readiness")
        poll(lambda: len(client.query('up{job="hyperrec-transformer"} == 1')) == 2, "both targets up")
        yield client, {r: f"http://127.0.0.1:{p}/observe" for r, p in ports.items()}
    finally:
        for proc in (server, *servers):
            proc.terminate()
            proc.wait(timeout=30)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def post(url: str, **observation) -> None:
    request = urllib.request.Request(url, data=json.dumps(observation).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()


def serve_step(client, urls, totals, *, challenger: dict, champion: dict) -> None:
    """Post one step's traffic, then wait until Prometheus has scraped all of it."""
    for revision, observation in (("champion", champion), ("challenger", challenger)):
        post(urls[revision], **observation)
        totals[revision] += observation["requests"]
    for revision in ("champion", "challenger"):
        count = f'sum(hyperrec_stage_seconds_count{{stage="preprocess",revision="{revision}"}})'
        expected = totals[revision] + HISTORY_REQUESTS
        poll(lambda count=count, expected=expected: client.scalar(count) == expected,
             f"{expected} {revision} requests")


def write_feedback(directory: Path, revision: str, shown: int, clicked: int, version: str) -> None:
    records = []
    for i in range(shown):
        base = {"request_id": f"{revision}-{i // 10}", "user": f"u{i // 10}", "item_id": f"m{i % 10}",
                "value": None, "ts": 1.0, "received": 1.0, "revision": revision, "model_version": version}
        records.append({**base, "type": "impression"})
        if i < clicked:
            records.append({**base, "type": "click"})
    with FeedbackLog(directory) as log:
        log.append(records)


def test_controller_reads_prometheus_and_rolls_back_a_failing_challenger(prometheus, tmp_path):
    client, urls = prometheus
    cfg = CanaryConfig(min_steps_per_stage=1, prometheus={"url": client.url, "window": "4s"},
                       guardrails={"min_requests": 50})
    feedback = tmp_path / "feedback"
    write_feedback(feedback, "champion", 900, 45, "1")
    write_feedback(feedback, "challenger", 100, 5, "2")
    versions = {"champion": "1", "challenger": "2"}

    def read_ctr():
        tally = tally_feedback(read_feedback(feedback).records, versions=versions)
        return tally.counts("champion"), tally.counts("challenger")

    source = PrometheusEvidence(client, cfg.prometheus, read_ctr)
    controller = CanaryController(cfg)
    totals = {"champion": 0, "challenger": 0}

    healthy = {"requests": 100, "errors": 0, "degraded": 0, "latency_seconds": 0.03}
    serve_step(client, urls, totals, champion={**healthy, "requests": 900}, challenger=healthy)
    evidence = source.read(controller.traffic_percent)
    first = controller.step(evidence)
    assert evidence.challenger.requests > 0 and evidence.challenger.errors == 0
    # histogram_quantile inside the (0.025, 0.05] bucket: 0.025 + 0.99 * 0.025
    assert evidence.challenger.p99_seconds == pytest.approx(0.04975, rel=1e-6)
    assert (evidence.champion_ctr.impressions, evidence.champion_ctr.clicks) == (900, 45)
    assert (first.action, first.traffic_after) == ("promote", 50)
    assert first.guardrails == {"passed": True, "violations": []}

    poll(lambda: client.scalar(serving_queries(cfg.prometheus, "challenger")["requests"]) == 0,
         "the first step leaving the window")
    failing = {"requests": 100, "errors": 20, "degraded": 20, "latency_seconds": 1.0}
    serve_step(client, urls, totals, champion={**healthy, "requests": 100}, challenger=failing)
    evidence = source.read(controller.traffic_percent)
    second = controller.step(evidence)
    assert evidence.challenger.error_rate == pytest.approx(0.2, rel=1e-6)
    assert evidence.challenger.degraded_ratio == pytest.approx(0.2, rel=1e-6)
    assert evidence.champion.error_rate == 0.0
    assert (second.action, second.traffic_after) == ("rollback", 0)
    assert "error rate 0.2000 > 0.01" in second.reason and "p99 latency" in second.reason
