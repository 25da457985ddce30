"""A real ``tritonserver`` for the e2e tests: the binary that the ``nvidia-pytriton`` wheel bundles.

That wheel ships Triton with the python backend only (no onnxruntime backend) and pins numpy<2, so it lives
in a virtualenv of its own, created once and cached (``HYPERREC_TRITON_VENV``, default
``~/.cache/hyperrec/triton-venv``). The generated repository is served through the python backend: the
bundle's ``config.pbtxt`` is parsed, only its platform/backend, model file and instance kind change, and a
small ``model.py`` runs the bundle's ``model.onnx`` with onnxruntime. Triton itself therefore checks the
generated IO contract (names, dtypes, dims, reshape, batching) on every request.

Everything that can fail for reasons outside the repository (no wheel for this platform, no network, a
server that cannot start) raises :class:`TritonUnavailable` with the exact reason, which the tests turn
into a skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from hyperrec.serving.server import free_ports

TRITON_VENV_ENV = "HYPERREC_TRITON_VENV"
DEFAULT_TRITON_VENV = Path.home() / ".cache" / "hyperrec" / "triton-venv"
READY_MARKER = "hyperrec-triton-venv.json"
PIP_TIMEOUT_S = 900


class TritonUnavailable(RuntimeError):
    """A real Triton cannot be had here; ``str(exc)`` is the exact reason (for pytest.skip)."""


class TritonModelError(RuntimeError):
    """Triton ran but refused a model of the repository (a contract problem: the test must fail)."""


@dataclass(frozen=True)
class TritonDist:
    """The tritonserver of the pytriton wheel inside the Triton virtualenv."""

    venv: Path
    python: Path
    server: Path
    backend_dir: Path
    lib_dirs: tuple[Path, ...]
    install_s: float  # seconds spent installing in this session; 0.0 when the cached venv was reused

    def env(self) -> dict[str, str]:
        """Environment for tritonserver: its bundled libs and libpython on LD_LIBRARY_PATH, the venv first on
        PATH (the python-backend stub embeds CPython, which finds its prefix, hence the venv's
        site-packages, through the ``python3`` on PATH), and nothing of the main venv."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        libs = [str(p) for p in self.lib_dirs]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "/usr/bin:/bin")])
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PYTHONNOUSERSITE"] = "1"
        env["OMP_NUM_THREADS"] = "1"
        return env


# --------------------------------------------------------------------------------------------- the venv


def triton_requirements() -> list[str]:
    """pytriton (tritonserver + python backend), and the main venv's onnxruntime at numpy<2."""
    try:
        ort = f"onnxruntime=={metadata.version('onnxruntime')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - hyperrec depends on onnxruntime
        ort = "onnxruntime"
    return ["nvidia-pytriton", "numpy<2", ort]


def ensure_triton_venv(path: Path | None = None) -> TritonDist:
    """The cached Triton virtualenv, created (under a file lock) when missing or built for other
    requirements."""
    path = Path(path or os.environ.get(TRITON_VENV_ENV) or DEFAULT_TRITON_VENV).expanduser()
    requirements = triton_requirements()
    wanted = {"requirements": requirements, "python": sysconfig.get_python_version()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = path / READY_MARKER
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return find_dist(path, install_s=0.0)
        except (OSError, ValueError):
            pass
        started = time.monotonic()
        shutil.rmtree(path, ignore_errors=True)
        _run(["-m", "venv", str(path)], "creating the Triton venv", timeout=300)
        _run_pip(path / "bin" / "python", requirements)
        dist = find_dist(path, install_s=time.monotonic() - started)
        marker.write_text(json.dumps(wanted), encoding="utf-8")
        return dist


def find_dist(venv: Path, *, install_s: float) -> TritonDist:
    """Locate tritonserver, its backends and libs in ``venv``; put the python-backend stub in place."""
    python = venv / "bin" / "python"
    # pytriton/tritonserver/bin/tritonserver; search deeper only if a later wheel moves it.
    servers = sorted(venv.glob("lib/python3*/site-packages/*/tritonserver/bin/tritonserver")) or sorted(
        venv.glob("lib/python3*/site-packages/**/tritonserver/bin/tritonserver"))
    if not servers:
        raise TritonUnavailable(f"no tritonserver binary inside the nvidia-pytriton install in {venv}")
    root = servers[0].parent.parent  # .../pytriton/tritonserver
    backend_dir = root / "backends"
    if not (backend_dir / "python" / "libtriton_python.so").is_file():
        raise TritonUnavailable(f"the pytriton wheel has no python backend under {backend_dir}")
    stub = backend_dir / "python" / "triton_python_backend_stub"
    if not stub.is_file():
        # pytriton ships one stub per CPython minor version and copies the right one in at start-up.
        version = sysconfig.get_python_version()
        source = root / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not source.is_file():
            raise TritonUnavailable(f"the pytriton wheel has no python-backend stub for Python {version}")
        shutil.copy2(source, stub)
    libs = [p for p in (root.parent.parent / "nvidia_pytriton.libs", root / "external_libs") if p.is_dir()]
    # The stub links libpython3.X.so: take the one of the interpreter the venv is built on.
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and Path(libdir).is_dir():
        libs.insert(0, Path(libdir))
    return TritonDist(venv=venv, python=python, server=servers[0], backend_dir=backend_dir,
                      lib_dirs=tuple(libs), install_s=install_s)


def _run(args: list[str], what: str, *, timeout: float, python: Path | None = None) -> None:
    try:
        done = subprocess.run([str(python or sys.executable), *args], capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TritonUnavailable(f"{what} took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        raise TritonUnavailable(f"{what} failed: {_last_error_line(done.stdout + done.stderr)}")


def _run_pip(python: Path, requirements: list[str]) -> None:
    _run(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", *requirements],
         f"pip install {' '.join(requirements)}", timeout=PIP_TIMEOUT_S, python=python)


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["(no output)"])[-1]


# --------------------------------------------------------------------------------------------- the repository

MODEL_PY = '''\
"""Triton python-backend model: runs the hyperrec bundle's ONNX ranker with onnxruntime.

Generated for tests.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        onnx_file = config["parameters"]["onnx_model_filename"]["string_value"]
        path = os.path.join(args["model_repository"], args["model_version"], onnx_file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [
            (tensor["name"], pb_utils.triton_string_to_numpy(tensor["data_type"]))
            for tensor in config["output"]
        ]

    def execute(self, requests):
        responses = []
        for request in requests:
            # The tensors arrive as Triton hands them to a backend: batched, and reshaped per the config.
            feeds = {
                name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs
            }
            try:
                results = self.session.run([name for name, _ in self.outputs], feeds)
            except Exception as exc:  # noqa: BLE001 - answer the request with the error, keep serving
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, np.ascontiguousarray(value, dtype=dtype))
                for (name, dtype), value in zip(self.outputs, results)
            ]))
        return responses
'''


def python_backend_config(generated_config: Path) -> str:
    """The generated config.pbtxt as a python-backend config: IO, batching, versions untouched.

    Changes: ``platform`` -> ``backend: "python"``; ``default_model_filename`` -> model.py's default, the
    ONNX file name moved to ``parameters.onnx_model_filename``; every instance group -> KIND_CPU (count kept).
    """
    from google.protobuf import text_format

    from hyperrec.export.triton_config import model_config_pb2, parse_triton_config

    mc = model_config_pb2()
    config = parse_triton_config(generated_config)
    onnx_file = config.default_model_filename or "model.onnx"
    config.ClearField("platform")
    config.backend = "python"
    config.ClearField("default_model_filename")
    config.parameters["onnx_model_filename"].string_value = onnx_file
    for group in config.instance_group:
        group.kind = mc.ModelInstanceGroup.KIND_CPU
        group.ClearField("gpus")
    return text_format.MessageToString(config)


def python_backend_repository(bundle_dir: Path, out: Path) -> Path:
    """A Triton repository at ``out`` serving each model of ``bundle_dir/triton`` through the python backend.

    config.pbtxt and every ``configs/<name>.pbtxt`` variant are converted; version folders are copied with a
    model.py added beside the ONNX file.
    """
    source = Path(bundle_dir) / "triton"
    out = Path(out)
    models = sorted(p for p in source.iterdir() if (p / "config.pbtxt").is_file())
    if not models:
        raise FileNotFoundError(f"no model with a config.pbtxt under {source}")
    for model in models:
        target = out / model.name
        target.mkdir(parents=True)
        (target / "config.pbtxt").write_text(python_backend_config(model / "config.pbtxt"), encoding="utf-8")
        for variant in sorted((model / "configs").glob("*.pbtxt")):  # --model-config-name=<variant>
            (target / "configs").mkdir(exist_ok=True)
            (target / "configs" / variant.name).write_text(python_backend_config(variant), encoding="utf-8")
        for version in sorted(p for p in model.iterdir() if p.is_dir() and p.name.isdigit()):
            shutil.copytree(version, target / version.name)
            (target / version.name / "model.py").write_text(MODEL_PY, encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------- the server


class TritonServerProcess:
    """``tritonserver`` on free 127.0.0.1 ports; ``start`` waits (bounded) for the server and its models."""

    def __init__(
        self, dist: TritonDist, repository: Path, log_path: Path, *, host: str = "127.0.0.1",
        model_config_name: str | None = None,
    ) -> None:
        self.dist = dist
        self.model_config_name = model_config_name
        self.repository = Path(repository)
        self.log_path = Path(log_path)
        self.host = host
        self.http_port, self.grpc_port = free_ports(2, host)  # distinct (two free_port calls may repeat)
        self.proc: subprocess.Popen | None = None
        self.start_s = 0.0

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def command(self) -> list[str]:
        return [
            str(self.dist.server),
            f"--model-repository={self.repository}",
            f"--backend-directory={self.dist.backend_dir}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false", "--allow-gpu-metrics=false",
            "--model-control-mode=none",
            "--disable-auto-complete-config",  # serve the config as written: no backend fills anything in
            "--strict-readiness=true",
            "--exit-on-error=true",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
            *([f"--model-config-name={self.model_config_name}"] if self.model_config_name else []),
        ]

    def start(self, models: list[str], timeout_s: float = 120.0) -> None:
        started = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.dist.env(),
                    start_new_session=True,
                )
            except OSError as exc:
                raise TritonUnavailable(f"tritonserver could not be executed: {exc}") from None
        urls = [f"http://{self.http_url}/v2/health/ready"] + [
            f"http://{self.http_url}/v2/models/{name}/ready" for name in models
        ]
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reason = (
                    f"tritonserver exited with code {self.proc.returncode} at start-up: {self.error_line()}"
                )
                # A model Triton refused is the repository's fault, unless the python-backend stub (the test
                # harness, not the product) is what failed.
                if "failed to load" in reason and "stub" not in reason.lower():
                    raise TritonModelError(f"{reason}\n{self.log_tail()}")
                raise TritonUnavailable(reason)
            if all(_ok(url) for url in urls):
                self.start_s = time.monotonic() - started
                return
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"tritonserver was not ready within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its python-backend stubs
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def error_line(self) -> str:
        """Why the server stopped: its last ``error:`` line and the last model-load failure it logged."""
        lines = [line.strip() for line in self.log_tail(50000).splitlines() if line.strip()]
        failed = [line for line in lines if line.startswith("E") and "failed" in line.lower()]
        fatal = [line for line in lines if line.lower().startswith("error")]
        reason = [*failed[-1:], *fatal[-1:]]
        return " | ".join(reason) if reason else (lines or ["(no output)"])[-1]


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
