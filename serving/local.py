"""Run the embedded predictor and the transformer as local processes (``hyperrec serve``, benches, tests).

Each role is ``python -m hyperrec.serving <role>`` bound to 127.0.0.1 by default; the transformer calls the
predictor over gRPC (or HTTP) exactly as it would call Triton in a cluster. With a ``challenger`` bundle a
second predictor serves it and the transformer splits requests between the two revisions
(``serving.split``; ``PUT /hyperrec/split`` moves the share).

The children die with their parent even when it is killed outright (``serving/parent_death.py``); ``restart``
starts one again on the same ports (``serving/supervisor.py`` decides when).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hyperrec.errors import BundleError
from hyperrec.online.settings import ServingConfig

from .parent_death import parent_env

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    transformer_http: str
    predictor_http: str
    predictor_grpc: str
    model_name: str
    challenger_predictor_http: str | None = None

    @property
    def metrics_url(self) -> str:
        return f"{self.transformer_http}/metrics"

    @property
    def split_url(self) -> str:
        return f"{self.transformer_http}/hyperrec/split"

    @property
    def recommend_url(self) -> str:
        return f"{self.transformer_http}/v1/models/{self.model_name}:predict"

    @property
    def feedback_url(self) -> str:
        return f"{self.transformer_http}/v1/models/feedback:predict"


class LocalServers:
    """Context manager: start both servers, wait until ready, stop them (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        bundle: Path,
        settings: ServingConfig,
        *,
        config_path: Path | None = None,
        overrides: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        startup_timeout_s: float = 60.0,
        challenger: Path | None = None,
    ) -> None:
        from hyperrec.export.bundle import read_manifest

        from .server import free_ports

        self.bundle = Path(bundle)
        self.model_name = str(read_manifest(self.bundle)["model_name"])
        host = settings.host
        names = ("predictor_http_port", "predictor_grpc_port", "transformer_http_port")
        picked = iter(free_ports(5, host))  # distinct: three roles, and a challenger's two
        ports = {name: getattr(settings, name) or next(picked) for name in names}
        predictor_port = ports["predictor_grpc_port"] if settings.predictor_protocol == "grpc" else ports[
            "predictor_http_port"]
        self.settings = settings.model_copy(update={**ports, "predictor_url": f"{host}:{predictor_port}"})
        self.challenger = Path(challenger) if challenger is not None else None
        self._challenger_ports = {"http": next(picked), "grpc": next(picked)} if challenger else {}
        if challenger is not None:
            link = self._challenger_ports["grpc" if settings.predictor_protocol == "grpc" else "http"]
            split = self.settings.split.model_copy(update={"challenger_bundle_dir": self.challenger,
                                                          "challenger_predictor_url": f"{host}:{link}"})
            self.settings = self.settings.model_copy(update={"split": split})
        self.config_args = (["--config", str(config_path)] if config_path else []) + [
            arg for item in overrides or [] for arg in ("--set", item)
        ]
        self.env = {**os.environ, **(env or {})}
        self._tmp = tempfile.TemporaryDirectory(prefix="hyperrec-serve-")
        self.log_dir = Path(log_dir) if log_dir else Path(self._tmp.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.startup_timeout_s = startup_timeout_s
        self._procs: dict[str, subprocess.Popen] = {}
        self._launch: dict[str, tuple[list[str], str, str]] = {}  # name -> (args, role, readiness URL)
        s = self.settings
        self.endpoints = Endpoints(
            transformer_http=f"http://{host}:{s.transformer_http_port}",
            predictor_http=f"http://{host}:{s.predictor_http_port}",
            predictor_grpc=f"{host}:{s.predictor_grpc_port}",
            model_name=self.model_name,
            challenger_predictor_http=f"http://{host}:{self._challenger_ports['http']}"
            if challenger
            else None,
        )

    def __enter__(self) -> Endpoints:
        self.start()
        return self.endpoints

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Endpoints:
        s = self.settings
        settings_file = Path(self._tmp.name) / "serving.json"
        settings_file.write_text(s.model_dump_json(), encoding="utf-8")
        common = [
            "--bundle",
            str(self.bundle),
            "--bind_host",
            s.host,
            "--serving_settings",
            str(settings_file),
            *self.config_args,
        ]
        try:
            self._launch_role("predictor", [*common, "--http_port", str(s.predictor_http_port),
                                            "--grpc_port", str(s.predictor_grpc_port)],
                              f"{self.endpoints.predictor_http}/v2/models/{self.model_name}/ready")
            if self.challenger is not None:
                self._start_challenger_predictor()
            self._launch_role("transformer", [*common, "--http_port", str(s.transformer_http_port),
                                              "--predictor_url", s.predictor_url],
                              f"{self.endpoints.transformer_http}/v1/models/{self.model_name}")
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def _start_challenger_predictor(self) -> None:
        assert self.challenger is not None
        ports, s = self._challenger_ports, self.settings
        self._launch_role("challenger-predictor", [
            "--bundle", str(self.challenger), "--bind_host", s.host, *self.config_args,
            "--http_port", str(ports["http"]), "--grpc_port", str(ports["grpc"])],
            f"{self.endpoints.challenger_predictor_http}/v2/models/{self.model_name}/ready", role="predictor")

    def _launch_role(self, name: str, args: list[str], ready_url: str, *, role: str | None = None) -> None:
        self._launch[name] = (args, role or name, ready_url)
        self._spawn(name, args, role=role)
        self._wait_ready(name, ready_url)

    def pids(self) -> dict[str, int]:
        """The process id of each child, by name (``predictor``, ``transformer``,
        ``challenger-predictor``)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def exited(self) -> dict[str, int]:
        """The children that have exited, with their exit codes (negative: killed by that signal)."""
        return {name: code for name, proc in self._procs.items() if (code := proc.poll()) is not None}

    def restart(self, name: str) -> None:
        """Start the child ``name`` again with its arguments and ports; wait until it is ready."""
        args, role, ready_url = self._launch[name]
        self._spawn(name, args, role=role)
        self._wait_ready(name, ready_url)
        logger.info("the %s is back (pid %d)", name, self._procs[name].pid)

    def stop(self) -> None:
        """SIGTERM every child, wait for each (``serving.supervisor.stop_timeout_s``), then SIGKILL."""
        timeout = self.settings.supervisor.stop_timeout_s
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self._procs.items():
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s; killing it", name, timeout)
                proc.kill()
                proc.wait(timeout=timeout)
        self._procs.clear()
        for handle in getattr(self, "_logs", []):
            handle.close()
        self._logs = []

    def log_tail(self, role: str, chars: int = 2000) -> str:
        path = self.log_dir / f"{role}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else ""

    def _spawn(self, name: str, args: list[str], *, role: str | None = None) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs = [*getattr(self, "_logs", []), log]
        self._procs[name] = subprocess.Popen(
            [sys.executable, "-m", "hyperrec.serving", role or name, *args],
            stdout=log, stderr=subprocess.STDOUT, env={**self.env, **parent_env()}, start_new_session=True,
        )

    def _wait_ready(self, role: str, url: str) -> None:
        """Poll ``url`` until ``role`` says ready; raise ``BundleError`` when any child exits meanwhile.

        A predictor that dies while the transformer starts would otherwise keep the transformer "not ready"
        (it needs its predictor) until the timeout, with nobody to restart the predictor: the supervisor only
        runs once ``start`` has returned.
        """
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            for name, code in self.exited().items():
                raise BundleError(f"the {name} exited with code {code} while the {role} was starting:\n"
                                  f"{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200 and json.loads(response.read()).get("ready", True):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.2)
        raise BundleError(
            f"the {role} was not ready within {self.startup_timeout_s:.0f} s:\n{self.log_tail(role)}"
        )
