"""The GENERATED Triton repository in a REAL tritonserver (the binary of the ``nvidia-pytriton`` wheel).

The wheel has no onnxruntime backend, so the bundle's repository is served through the python backend: the
bundle's config.pbtxt is parsed and only its platform/backend, model file and instance kind change (see
``triton_support.python_backend_config``); a model.py runs the bundle's model.onnx with onnxruntime. Triton
itself thus validates the generated IO contract (names, dtypes, dims, reshape, batching) on every request.

The Triton venv (pytriton pins numpy<2) is created once and cached: ``HYPERREC_TRITON_VENV``, default
``~/.cache/hyperrec/triton-venv`` (about 25 s to install on 2 cores, about 450 MB). Tests skip, with the
exact reason, where pip cannot install it or tritonserver cannot run here. tritonclient.grpc runs in a child
process: this module imports KServe (the transformer's V2 client), and the two clash (kserve/kserve#3099).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import httpx
import numpy as np
import pytest
from triton_support import (
    TritonServerProcess,
    TritonUnavailable,
    ensure_triton_venv,
    python_backend_repository,
)

from hyperrec.features import encode_histories, encode_segments
from hyperrec.serving.server import free_port

pytestmark = pytest.mark.timeout(600)

MODEL = "ranker"
N_ITEMS, MAX_HISTORY = 50, 6
#: Triton's answer while the transformer sends ``segment`` as [batch] but the generated config declares
#: ``dims: [1]`` + ``reshape: {}`` (the wire shape is then [batch, 1]; only the model sees [batch]).

GRPC_CLIENT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tritonclient.grpc as grpcclient
    url, model, feeds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = grpcclient.InferenceServerClient(url)
    assert client.is_server_live() and client.is_model_ready(model)
    inputs = []
    for name, value in feeds.items():
        array = np.array(value, dtype=np.int64)
        inputs.append(grpcclient.InferInput(name, list(array.shape), "INT64"))
        inputs[-1].set_data_from_numpy(array)
    outputs = [grpcclient.InferRequestedOutput("scores")]
    result = client.infer(model, inputs, outputs=outputs, client_timeout=30)
    scores = result.as_numpy("scores")
    print(json.dumps({"shape": list(scores.shape), "dtype": str(scores.dtype), "scores": scores.tolist()}))
""")


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def triton_dist():
    started = time.monotonic()
    try:
        dist = ensure_triton_venv()
    except TritonUnavailable as exc:
        pytest.skip(f"no real Triton here: {exc}")
    how = f"installed in {dist.install_s:.1f} s" if dist.install_s else "cached"
    print(f"\n[triton] venv {dist.venv} ({how}; fixture {time.monotonic() - started:.1f} s)")
    return dist


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(bundle, python-backend repository) built from hyperrec's own bundle code."""
    from hyperrec.export.tiny import build_demo_bundle

    tmp = tmp_path_factory.mktemp("triton")
    bundle = tmp / "bundle"
    build_demo_bundle(bundle, n_items=N_ITEMS, max_history=MAX_HISTORY, dynamo=False)
    return bundle, python_backend_repository(bundle, tmp / "repository")


def _start(dist, repository, log_path, **kwargs) -> TritonServerProcess:
    server = TritonServerProcess(dist, repository, log_path, **kwargs)
    try:
        server.start([MODEL], timeout_s=120)
    except TritonUnavailable as exc:
        server.stop()
        pytest.skip(f"tritonserver cannot run here: {exc}")
    except BaseException:
        server.stop()
        raise
    print(
        f"\n[triton] server ready in {server.start_s:.2f} s on http {server.http_url}, grpc {server.grpc_url}"
    )
    return server


@pytest.fixture(scope="module")
def triton(triton_dist, generated, tmp_path_factory):
    _, repository = generated
    server = _start(triton_dist, repository, tmp_path_factory.mktemp("triton-logs") / "tritonserver.log")
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------- helpers


def _encoded(batch: int = 2) -> dict[str, np.ndarray]:
    """Model inputs as the transformer builds them (hyperrec.features): history [B, S], segment [B]."""
    histories = [np.array([1, 2, 3]), np.array([7]), np.array([], dtype=np.int64), np.arange(10)][:batch]
    segments = [None, 1, 3, 2][:batch]
    return {"history": encode_histories(histories, MAX_HISTORY), "segment": encode_segments(segments)}


def _reference(bundle, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / "triton" / MODEL / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return session.run(["scores"], feeds)[0]


def _generated_config(bundle, name: str = "config.pbtxt"):
    from hyperrec.export.triton_config import parse_triton_config

    return parse_triton_config(bundle / "triton" / MODEL / name)


def _wire(config, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors as the generated config says a client sends them: [batch, *dims] for a batching model."""
    assert config.max_batch_size > 0
    out = {}
    for tensor in config.input:
        array = feeds[tensor.name]
        out[tensor.name] = array.reshape(array.shape[0], *tensor.dims)
    return out


def _http_infer(server, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.http_url, connection_timeout=30, network_timeout=30)
    try:
        inputs = []
        for name, array in feeds.items():
            inputs.append(httpclient.InferInput(name, list(array.shape), "INT64"))
            inputs[-1].set_data_from_numpy(array)
        return client.infer(MODEL, inputs, outputs=[httpclient.InferRequestedOutput("scores")]).as_numpy(
            "scores"
        )
    finally:
        client.close()


# --------------------------------------------------------------------------------------------- tests


def test_triton_loads_the_generated_io_contract(triton, generated):
    """What Triton serves is the generated config: same IO, batching and versions (only the backend
    differs)."""
    import tritonclient.http as httpclient
    from google.protobuf import json_format

    from hyperrec.export.triton_config import model_config_pb2

    bundle, _ = generated
    client = httpclient.InferenceServerClient(triton.http_url, connection_timeout=30, network_timeout=30)
    try:
        assert client.is_server_ready() and client.is_model_ready(MODEL)
        served = json_format.ParseDict(client.get_model_config(MODEL), model_config_pb2().ModelConfig(),
                                       ignore_unknown_fields=True)
        metadata = client.get_model_metadata(MODEL)
    finally:
        client.close()
    generated_config = _generated_config(bundle)
    assert served.backend == "python" and served.name == generated_config.name == MODEL
    for field in ("input", "output", "max_batch_size", "dynamic_batching", "version_policy"):
        assert getattr(served, field) == getattr(generated_config, field), field
    assert [(g.kind, g.count) for g in served.instance_group] == [(2, 1)]  # KIND_CPU, the generated count
    assert {t["name"]: (t["datatype"], t["shape"]) for t in metadata["inputs"]} == {
        "history": ("INT64", [-1, MAX_HISTORY]), "segment": ("INT64", [-1, 1])}
    top_k = min(N_ITEMS, generated_config.output[1].dims[0])  # the in-graph top k, clamped to the catalogue
    assert metadata["outputs"] == [
        {"name": "scores", "datatype": "FP32", "shape": [-1, N_ITEMS]},
        {"name": "top_ids", "datatype": "INT64", "shape": [-1, top_k]},
        {"name": "top_scores", "datatype": "FP32", "shape": [-1, top_k]},
    ]
    assert metadata["versions"] == ["1"]


def test_http_scores_equal_onnxruntime(triton, generated):
    bundle, _ = generated
    feeds = _encoded(4)
    scores = _http_infer(triton, _wire(_generated_config(bundle), feeds))
    assert scores.shape == (4, N_ITEMS) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, _reference(bundle, feeds), rtol=0, atol=1e-5)


def test_concurrent_single_requests_go_through_the_dynamic_batcher(triton, generated):
    """Eight one-row requests at once: Triton may stack them (max_batch_size 64); each answer is its own
    row."""
    import tritonclient.http as httpclient

    bundle, _ = generated
    config = _generated_config(bundle)
    feeds = _encoded(4)
    reference = _reference(bundle, feeds)
    client = httpclient.InferenceServerClient(triton.http_url, concurrency=8, connection_timeout=30,
                                              network_timeout=30)
    try:
        pending = []
        for i in range(8):
            row = _wire(config, {name: array[i % 4: i % 4 + 1] for name, array in feeds.items()})
            inputs = []
            for name, array in row.items():
                inputs.append(httpclient.InferInput(name, list(array.shape), "INT64"))
                inputs[-1].set_data_from_numpy(array)
            pending.append((i % 4, client.async_infer(MODEL, inputs)))
        for row, request in pending:
            scores = request.get_result(timeout=30).as_numpy("scores")
            np.testing.assert_allclose(scores, reference[row: row + 1], rtol=0, atol=1e-5)
    finally:
        client.close()


def test_grpc_scores_equal_onnxruntime(triton, generated):
    bundle, _ = generated
    feeds = _encoded(3)
    wire = {name: array.tolist() for name, array in _wire(_generated_config(bundle), feeds).items()}
    done = subprocess.run([sys.executable, "-c", GRPC_CLIENT, triton.grpc_url, MODEL, json.dumps(wire)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["shape"] == [3, N_ITEMS] and answer["dtype"] == "float32"
    np.testing.assert_allclose(np.array(answer["scores"]), _reference(bundle, feeds), rtol=0, atol=1e-5)


def test_the_cpu_config_variant_is_what_model_config_name_cpu_serves(triton_dist, generated, tmp_path):
    """``--model-config-name=cpu`` picks configs/cpu.pbtxt (KIND_CPU, cpu_instances), as bundle.py
    documents."""
    import tritonclient.http as httpclient

    bundle, repository = generated
    server = _start(triton_dist, repository, tmp_path / "tritonserver-cpu.log", model_config_name="cpu")
    try:
        client = httpclient.InferenceServerClient(server.http_url, connection_timeout=30, network_timeout=30)
        try:
            served = client.get_model_config(MODEL)
        finally:
            client.close()
        cpu = _generated_config(bundle, "configs/cpu.pbtxt")
        assert [(g["kind"], g["count"]) for g in served["instance_group"]] == [
            ("KIND_CPU", cpu.instance_group[0].count)]
        feeds = _encoded(2)
        np.testing.assert_allclose(_http_infer(server, _wire(cpu, feeds)), _reference(bundle, feeds),
                                   rtol=0, atol=1e-5)
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_transformer_v2_client_scores_on_real_triton(triton, generated, protocol):
    """The transformer's own client (KServe's gRPC client, tritonclient.http.aio) with its own inputs."""
    from hyperrec.online.settings import ServingConfig
    from hyperrec.serving.v2_client import TritonV2Client

    bundle, _ = generated
    url = triton.grpc_url if protocol == "grpc" else triton.http_url
    client = TritonV2Client(
        ServingConfig(
            predictor_protocol=protocol,
            predictor_url=url,
            request_timeout_s=30,
            attempt_timeout_s=15,
            retries=1,
        ),
        MODEL,
        N_ITEMS,
    )
    feeds = _encoded(2)

    async def run():
        try:
            return await client.score(feeds, f"triton-{protocol}")
        finally:
            await client.close()

    scores = asyncio.run(run())
    np.testing.assert_allclose(scores, _reference(bundle, feeds), rtol=0, atol=1e-5)


def test_a_recommendation_round_trip_through_the_transformer_and_real_triton(triton, generated, tmp_path):
    """``python -m hyperrec.serving transformer`` with predictor_url = Triton's gRPC port, then POST
    recommend."""
    from hyperrec.online.settings import ServingConfig

    bundle, _ = generated
    port = free_port()
    settings = ServingConfig(
        predictor_protocol="grpc",
        predictor_url=triton.grpc_url,
        transformer_http_port=port,
        request_timeout_s=30,
        attempt_timeout_s=15,
        retries=1,
        feedback_dir=tmp_path / "feedback",
        load_in_background=False,
    )
    settings_file = tmp_path / "serving.json"
    settings_file.write_text(settings.model_dump_json(), encoding="utf-8")
    log_path = tmp_path / "transformer.log"
    env = {**os.environ, "HYPERREC_PSEUDONYM_KEY": "triton-e2e-key"}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hyperrec.serving", "transformer", "--bundle", str(bundle), "--bind_host",
             "127.0.0.1", "--serving_settings", str(settings_file), "--http_port", str(port),
             "--predictor_url", triton.grpc_url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/v1/models/{MODEL}", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, (
                "transformer not ready in 90 s:\n" + log_path.read_text()[-3000:]
            )
            time.sleep(0.25)
        with httpx.Client(timeout=60) as http:
            response = http.post(f"{base}/v1/models/{MODEL}:predict",
                                 json={"user_id": "carol", "history": ["m00001", "m00002"], "k": 5})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["source"] == "model" and answer["degraded"] is False, answer
        assert answer["model"] == {"name": MODEL, "version": "demo-1"}
        assert len(answer["recommendations"]) == 5
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
