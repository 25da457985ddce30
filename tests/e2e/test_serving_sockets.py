"""End to end over real sockets on 127.0.0.1: embedded predictor and transformer as separate processes.

tritonclient HTTP and gRPC talk to the predictor as they would to Triton; an HTTP client talks to the
transformer. tritonclient.grpc runs in a child process: it cannot share a process with KServe
(kserve/kserve#3099), and the test process has imported KServe.
"""

import argparse
import asyncio
import json
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pytest

from hyperrec.features import encode_histories, encode_segments
from hyperrec.online.cold_items import ColdSlot
from hyperrec.online.settings import ServingConfig

#: The e2e bundle's items without training history (its cold slot).
COLD_ITEMS = (5, 20, 33, 47)

GRPC_CLIENT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tritonclient.grpc as grpcclient
    url, model, history, segment = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    client = grpcclient.InferenceServerClient(url)
    assert client.is_server_live() and client.is_model_ready(model)
    inputs = [grpcclient.InferInput("history", [len(history), len(history[0])], "INT64"),
              grpcclient.InferInput("segment", [len(segment), 1], "INT64")]
    inputs[0].set_data_from_numpy(np.array(history, dtype=np.int64))
    inputs[1].set_data_from_numpy(np.array(segment, dtype=np.int64).reshape(-1, 1))
    outputs = [grpcclient.InferRequestedOutput("scores")]
    result = client.infer(model, inputs, outputs=outputs, client_timeout=10)
    scores = result.as_numpy("scores")
    print(json.dumps({"shape": list(scores.shape), "dtype": str(scores.dtype), "scores": scores.tolist()}))
""")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    from hyperrec.export.tiny import build_demo_bundle
    from hyperrec.serving.local import LocalServers

    tmp = tmp_path_factory.mktemp("e2e")
    bundle = tmp / "bundle"
    # A cold slot, so the predictor serves the best cold item too (cold_id/cold_score) as a trained bundle
    # does.
    build_demo_bundle(bundle, n_items=50, max_history=6, dynamo=False,
                      cold_slot=ColdSlot(np.array(COLD_ITEMS), position=3, offset=1.0))
    settings = ServingConfig(predictor_http_port=0, predictor_grpc_port=0, transformer_http_port=0,
                             feedback_dir=tmp / "feedback", load_in_background=False)
    env = {"HYPERREC_PSEUDONYM_KEY": "e2e-test-key"}
    local = LocalServers(bundle, settings, env=env, log_dir=tmp / "logs", startup_timeout_s=60)
    with local as endpoints:
        yield local, endpoints, bundle


def _inputs():
    history = encode_histories([np.array([1, 2, 3]), np.array([7])], 6)
    segment = encode_segments([None, 1])
    return history, segment


def _reference(bundle, history, segment):
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / "triton/ranker/1/model.onnx"))
    return session.run(["scores"], {"history": history, "segment": segment})[0]


def test_tritonclient_http_against_the_embedded_predictor(servers):
    import tritonclient.http as httpclient

    _, endpoints, bundle = servers
    history, segment = _inputs()
    client = httpclient.InferenceServerClient(
        endpoints.predictor_http.removeprefix("http://"), connection_timeout=10, network_timeout=10
    )
    try:
        assert client.is_server_live() and client.is_model_ready("ranker")
        inputs = [httpclient.InferInput("history", list(history.shape), "INT64"),
                  httpclient.InferInput("segment", [len(segment), 1], "INT64")]
        inputs[0].set_data_from_numpy(history, binary_data=False)
        inputs[1].set_data_from_numpy(segment.reshape(-1, 1), binary_data=False)
        result = client.infer(
            "ranker",
            inputs,
            outputs=[httpclient.InferRequestedOutput("scores", binary_data=False)],
            headers={"Content-Type": "application/json"},
        )
        scores = result.as_numpy("scores")
    finally:
        client.close()
    assert scores.shape == (2, 50) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, _reference(bundle, history, segment), atol=1e-5)


def test_tritonclient_grpc_against_the_embedded_predictor(servers, tmp_path):
    local, endpoints, bundle = servers
    history, segment = _inputs()
    done = subprocess.run(
        [sys.executable, "-c", GRPC_CLIENT, endpoints.predictor_grpc, "ranker",
         json.dumps(history.tolist()), json.dumps(segment.tolist())],
        capture_output=True, text=True, timeout=60, env={**local.env}, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["shape"] == [2, 50] and answer["dtype"] == "float32"
    np.testing.assert_allclose(np.array(answer["scores"]), _reference(bundle, history, segment), atol=1e-5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_transformer_client_scores_over_both_protocols(servers, protocol):
    from hyperrec.serving.v2_client import TritonV2Client

    _, endpoints, bundle = servers
    url = endpoints.predictor_grpc if protocol == "grpc" else endpoints.predictor_http.removeprefix("http://")
    client = TritonV2Client(ServingConfig(predictor_protocol=protocol, predictor_url=url, request_timeout_s=5,
                                          attempt_timeout_s=5), "ranker", 50)
    history, segment = _inputs()

    async def run():
        try:
            return await client.score({"history": history, "segment": segment}, "req-1")
        finally:
            await client.close()

    np.testing.assert_allclose(asyncio.run(run()), _reference(bundle, history, segment), atol=1e-5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_transformer_client_gets_the_in_graph_top_k_over_both_protocols(servers, protocol):
    from hyperrec.serving.v2_client import TritonV2Client

    _, endpoints, bundle = servers
    url = endpoints.predictor_grpc if protocol == "grpc" else endpoints.predictor_http.removeprefix("http://")
    client = TritonV2Client(ServingConfig(predictor_protocol=protocol, predictor_url=url, request_timeout_s=5,
                                          attempt_timeout_s=5), "ranker", 50, top_k=50, cold_outputs=True)
    history, segment = _inputs()

    async def run():
        try:
            return await client.top_k({"history": history, "segment": segment}, "req-2")
        finally:
            await client.close()

    top = asyncio.run(run())
    ids, scores = top.ids, top.scores
    reference = _reference(bundle, history, segment)
    assert ids.shape == scores.shape == (2, 50) and ids.dtype == np.int64
    for row, tokens in enumerate(history):
        seen = set((tokens[tokens > 0] - 1).tolist())
        order = sorted(set(range(50)) - seen, key=lambda i: (-reference[row, i], i))
        assert ids[row, : len(order)].tolist() == order
        np.testing.assert_allclose(scores[row, : len(order)], reference[row, order], atol=1e-5)
        cold = [item for item in order if item in COLD_ITEMS]  # best first, ties by the lower index
        assert top.cold_ids[row].tolist() == cold[:1]
        np.testing.assert_allclose(top.cold_scores[row], reference[row, cold[:1]], atol=1e-5)


def test_http_request_to_the_transformer_and_feedback(servers):
    _, endpoints, _ = servers
    with httpx.Client(timeout=10) as client:
        response = client.post(endpoints.recommend_url, json={
            "user_id": "alice", "history": ["m00001", "m00002", "unknown-id"], "k": 5, "explain": True,
        })
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["source"] == "model" and answer["degraded"] is False
        assert answer["model"] == {"name": "ranker", "version": "demo-1"}
        assert len(answer["recommendations"]) == 5 and answer["unknown_items"] == ["unknown-id"]
        assert answer["explanation_method"] == "embedding_cosine"
        bad = client.post(endpoints.recommend_url, json={"user_id": "alice", "k": 1000})
        assert bad.status_code == 400 and "k must be between" in bad.json()["error"]
        feedback = client.post(endpoints.feedback_url, json={
            "request_id": answer["request_id"], "user_id": "alice",
            "events": [{"type": "click", "item_id": answer["recommendations"][0]["item_id"]}],
        })
        assert feedback.status_code == 200 and feedback.json()["accepted"] == 1
        metrics = client.get(f"{endpoints.transformer_http}/metrics").text
        assert 'hyperrec_stage_seconds_count{model="ranker",revision="champion",stage="predictor"}' in metrics


def test_hyperrec_recommend_prints_explained_recommendations(servers, capsys):
    from hyperrec.serving.cli import add_serving_commands

    _, endpoints, _ = servers
    root = argparse.ArgumentParser(prog="hyperrec")
    add_serving_commands(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(["recommend", "--url", endpoints.transformer_http, "--user-id", "bob",
                            "--history", "m00003", "m00004", "--k", "3"])
    args.handler(args)
    out = capsys.readouterr().out
    assert "model ranker version demo-1 · source model" in out
    assert out.count("because of:") == 3 and "explanations: embedding_cosine" in out
