"""`hyperrec drift` pushes its result to a real Prometheus Pushgateway (Debian's prometheus-pushgateway), from
where Prometheus scrapes the drift status for the dashboard and the DriftDetected alert."""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import time
import urllib.request

import pandas as pd
import pytest
from monitoring_helpers import START, synthetic_events
from prometheus_client.parser import text_string_to_metric_families

from hyperrec.monitoring.metrics import CHECK_DRIFTED, DRIFT_DETECTED, JOB, LAST_CHECK, QUALITY_BELOW_FLOOR
from hyperrec.pipelines.drift_cli import add_monitoring_commands, run_drift_command

DAY = 86400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture
def pushgateway(tmp_path):
    """A Pushgateway on 127.0.0.1; yields its host:port."""
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.skip("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
    address = f"127.0.0.1:{_free_port()}"
    log = (tmp_path / "pushgateway.log").open("w")
    process = subprocess.Popen(
        [binary, f"--web.listen-address={address}"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(100):  # bounded: at most ~10 s for it to listen
            try:
                _get(f"http://{address}/-/ready")
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the Pushgateway did not start: {(tmp_path / 'pushgateway.log').read_text()}")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_drift_check_pushes_its_status_to_the_pushgateway(pushgateway, tmp_path):
    early = synthetic_events(200, seed=1)
    late = synthetic_events(200, seed=2, start=START + 100 * DAY, dwell_scale=1.6)
    events = tmp_path / "events.csv"
    pd.concat([early, late], ignore_index=True).to_csv(events, index=False)
    parser = argparse.ArgumentParser(prog="hyperrec")
    add_monitoring_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "drift",
            "--reference",
            str(events),
            "--reference-end",
            str(START + 50 * DAY),
            "--current",
            str(events),
            "--current-start",
            "2024-02-01",
            "--output-dir",
            str(tmp_path / "out"),
            "--set",
            f"monitoring.pushgateway_url={pushgateway}",
        ]
    )

    assert run_drift_command(args) == 1

    samples = _samples(_get(f"http://{pushgateway}/metrics"))
    job = (("instance", ""), ("job", JOB))
    assert samples[(DRIFT_DETECTED, job)] == 1
    assert samples[(CHECK_DRIFTED, (("check", "dwell_seconds"), *job))] == 1
    assert samples[(QUALITY_BELOW_FLOOR, job)] == 0
    assert abs(samples[(LAST_CHECK, job)] - time.time()) < 3600


def test_an_unreachable_pushgateway_does_not_fail_the_check(tmp_path, caplog):
    events = tmp_path / "events.csv"
    synthetic_events(200, seed=1).to_csv(events, index=False)
    parser = argparse.ArgumentParser(prog="hyperrec")
    add_monitoring_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([
        "drift", "--reference", str(events), "--current", str(events), "--output-dir", str(tmp_path / "out"),
        "--set", f"monitoring.pushgateway_url=127.0.0.1:{_free_port()}",
    ])
    assert run_drift_command(args) == 1
    assert "could not push drift gauges" in caplog.text
