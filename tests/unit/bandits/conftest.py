"""Helpers of the bandit tests: a settable clock, candidates, impressions, and a real redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hyperrec.online.bandits.context import BanditContext, Candidates
from hyperrec.online.bandits.feedback import Impression
from hyperrec.online.bandits.reranker import Slate


class Clock:
    """A clock the test moves by hand (no wall-clock waits in the tests)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_candidates(n: int = 10) -> Candidates:
    return Candidates(
        tuple(f"m{j}" for j in range(n)), np.linspace(3.0, 1.0, n), np.arange(n, dtype=float) * 10
    )


CONTEXT = BanditContext(segment=2, history_length=25)


def outcomes(slate: Slate, request_id: str, clicked: set[str]) -> list[Impression]:
    return [Impression.from_served(s, clicked=s.item_id in clicked) for s in slate.served(request_id)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server process on 127.0.0.1 (AOF on, fsync always), which a test may kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):  # bounded: at most ~10 s for the server to listen
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.05) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install -y redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
