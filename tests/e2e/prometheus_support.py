"""The real Prometheus server (Debian's ``prometheus``) for e2e tests: started on a free 127.0.0.1 port with a
scrape config written into a test folder."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hyperrec.experiments.prometheus import PromQLClient


def prometheus_binary() -> str:
    """The ``prometheus`` executable; skips the test when it is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (apt-get install -y prometheus)")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_prometheus(binary: str, folder: Path, config: dict[str, Any]
                     ) -> tuple[subprocess.Popen, PromQLClient, int]:
    """Start Prometheus with ``config`` (written to ``folder/prometheus.yml``, its TSDB in ``folder/tsdb``).

    Returns:
        (the process, a client of its HTTP API, its port); the caller terminates the process.
    """
    (folder / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, PromQLClient(f"http://127.0.0.1:{port}", timeout=5), port
