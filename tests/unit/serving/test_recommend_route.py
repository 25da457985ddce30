"""The recommend model's own ``:predict`` route answers exactly as KServe's V1 predict endpoint does."""

import asyncio
import json

import pytest
from kserve.protocol.rest.v1_endpoints import V1Endpoints
from serving_helpers import OnnxScorer, fake_pseudonymize
from starlette.requests import Request

from hyperrec.serving.recommend_route import predict_endpoint
from hyperrec.serving.server import HyperrecModelServer, build_models, create_rest_app

URL = "/v1/models/ranker:predict"
BODIES = [
    {
        "user_id": "u1",
        "history": ["m00003", {"item_id": "m00007", "event": "click"}, "nope"],
        "k": 5,
        "explain": True,
    },
    {"user_id": "u2", "history": ["m00010", "m00011"], "k": 3, "request_id": "r-2"},
    {"user_id": "u3", "k": 4},  # no history: popularity
    {"user_id": "u4", "history": ["m00001"], "candidates": ["m00002", "m00005", "m00009"], "k": 2},
]


@pytest.fixture
def server(demo_bundle, serving_settings):
    models = build_models(
        "transformer",
        demo_bundle,
        serving_settings(log_served=False),
        pseudonymize=fake_pseudonymize,
        scorer_factory=lambda manifest: OnnxScorer(None, demo_bundle),
    )
    server = HyperrecModelServer(enable_grpc=False)
    for model in models:
        model.load()
        server.register_model(model)
    return server


def request(body: bytes, request_id: str) -> Request:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    scope = {"type": "http", "method": "POST", "path": URL, "headers": headers, "query_string": b""}
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return chunks.pop(0)

    return Request(scope, receive)


@pytest.mark.parametrize("body", BODIES)
def test_the_route_answers_what_kserves_v1_predict_answers(server, body):
    raw = json.dumps(body).encode()

    async def both():
        ours = await predict_endpoint(server, "ranker")(request(raw, "trace-1"))
        kserves = await V1Endpoints(server.dataplane).predict("ranker", request(raw, "trace-1"))
        return ours, kserves

    ours, kserves = asyncio.run(both())
    assert ours.status_code == kserves.status_code == 200
    assert json.loads(ours.body) == json.loads(kserves.body)
    assert ours.headers["x-request-id"] == kserves.headers["x-request-id"]
    assert ours.headers["content-type"] == "application/json"


def test_the_app_serves_the_recommend_verb_on_its_own_route_and_feedback_on_kserves(server, caplog):
    from fastapi.testclient import TestClient

    client = TestClient(create_rest_app(server), raise_server_exceptions=False)
    with caplog.at_level("WARNING", logger="hyperrec.serving.http_errors"):
        assert (
            client.post(URL, content=b"{oops", headers={"content-type": "application/json"}).status_code
            == 400
        )
        assert client.post("/v1/models/feedback:predict", json={}).status_code == 400
    routes = [record.getMessage().split(" → ")[0] for record in caplog.records]
    assert routes == [
        "POST /v1/models/ranker:predict",
        "POST /v1/models/{model_name}:predict",
    ]  # ours, KServe's
