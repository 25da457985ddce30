"""Nobody who merely reaches the port can unload a model, and readiness tells the truth (issue 11, finding
1)."""

import pytest
from serving_helpers import Aborted, GrpcContext, OnnxScorer, grpc_servicer, make_server, transformer_server

from hyperrec.online.settings import HttpGuardConfig
from hyperrec.serving.predictor import OnnxRankerModel

TOKEN = "s3cret-repository-token"


def predictor_client(bundle, http=None, load=True):
    model = OnnxRankerModel("ranker", bundle)
    if load:
        model.load()
    return make_server([model], http=http or HttpGuardConfig())




@pytest.mark.parametrize("verb", ["load", "unload"])
def test_repository_endpoints_are_off_by_default_on_the_predictor(demo_bundle, verb):
    client = predictor_client(demo_bundle)
    response = client.post(f"/v2/repository/models/ranker/{verb}")
    assert response.status_code == 403 and "serving.http.repository_api" in response.json()["error"]
    assert client.get("/v2/models/ranker/ready").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_repository_endpoints_are_off_by_default_on_the_transformer(demo_bundle, serving_settings):
    client = transformer_server(demo_bundle, serving_settings(), OnnxScorer(None, demo_bundle))
    assert client.post("/v2/repository/models/ranker/unload").status_code == 403
    assert client.post("/v2/repository/models/feedback/unload").status_code == 403
    answer = client.post("/v1/models/ranker:predict", json={"user_id": "u1", "history": ["m00001"]})
    assert answer.status_code == 200 and not answer.json()["degraded"]


def test_when_switched_on_the_repository_needs_the_bearer_token_and_readiness_follows_an_unload(
        demo_bundle, monkeypatch):
    monkeypatch.setenv("HYPERREC_TEST_REPOSITORY_TOKEN", TOKEN)
    http = HttpGuardConfig(repository_api=True, repository_token_env="HYPERREC_TEST_REPOSITORY_TOKEN")
    client = predictor_client(demo_bundle, http)
    assert client.post("/v2/repository/models/ranker/unload").status_code == 401
    wrong = {"authorization": "Bearer not-the-token"}
    assert client.post("/v2/repository/models/ranker/unload", headers=wrong).status_code == 401
    good = {"authorization": f"Bearer {TOKEN}"}
    assert client.post("/v2/repository/models/ranker/unload", headers=good).status_code == 200
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert client.get("/v2/models/ranker/ready").status_code in (404, 503)


def test_the_repository_api_switched_on_without_a_token_refuses_to_start(demo_bundle, monkeypatch):
    monkeypatch.delenv("HYPERREC_REPOSITORY_TOKEN", raising=False)
    with pytest.raises(ValueError, match="HYPERREC_REPOSITORY_TOKEN"):
        predictor_client(demo_bundle, HttpGuardConfig(repository_api=True))


def test_readiness_is_503_while_a_model_is_not_loaded(demo_bundle):
    client = predictor_client(demo_bundle, load=False)
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json() == {"ready": False, "models": {"ranker": "loading"}}
    assert client.get("/v2/models/ranker/ready").status_code == 503


class DownScorer:
    """A predictor link whose predictor is down: every call fails, its readiness probe says no."""

    async def score(self, inputs, request_id):
        from hyperrec.online.errors import PredictorUnavailable

        raise PredictorUnavailable("connection refused")

    async def is_ready(self):
        return False

    async def close(self):
        pass


def test_the_transformer_answers_degraded_but_is_not_ready_while_its_predictor_is_down(
        demo_bundle, serving_settings):
    client = transformer_server(demo_bundle, serving_settings(), DownScorer())
    answer = client.post("/v1/models/ranker:predict", json={"user_id": "u1", "history": ["m00001"]})
    assert answer.status_code == 200 and answer.json()["degraded"] is True
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 503
    assert ready.json() == {
        "ready": False,
        "models": {"ranker": "predictor_unavailable", "feedback": "ready"},
    }
    assert client.get("/v2/models/ranker/ready").status_code == 503
    assert client.get("/v2/health/live").status_code == 200  # alive: no restart, the predictor is the problem


def test_readiness_can_ignore_the_predictor_where_an_orchestrator_must_keep_degraded_traffic(
        demo_bundle, serving_settings):
    settings = serving_settings(http={"ready_requires_predictor": False})
    client = transformer_server(demo_bundle, settings, DownScorer())
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_the_grpc_repository_calls_are_refused_too(demo_bundle, monkeypatch):
    import asyncio

    from grpc import StatusCode
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    servicer, server = grpc_servicer(demo_bundle, HttpGuardConfig())
    context = GrpcContext()
    with pytest.raises(Aborted, match="serving.http.repository_api"):
        asyncio.run(
            servicer.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="ranker"), context)
        )
    assert context.code == StatusCode.PERMISSION_DENIED
    assert server.registered_models.get_model("ranker") is not None

    monkeypatch.setenv("HYPERREC_REPOSITORY_TOKEN", TOKEN)
    servicer, server = grpc_servicer(demo_bundle, HttpGuardConfig(repository_api=True))
    with pytest.raises(Aborted):
        asyncio.run(servicer.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="ranker"),
                                                   GrpcContext([("authorization", "Bearer nope")])))
    answer = asyncio.run(servicer.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="ranker"),
                                                        GrpcContext([("authorization", f"Bearer {TOKEN}")])))
    assert answer.isUnloaded
    assert asyncio.run(servicer.ServerReady(pb.ServerReadyRequest(), GrpcContext())).ready is False


def test_grpc_server_ready_is_false_while_loading(demo_bundle):
    import asyncio

    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    servicer, _ = grpc_servicer(demo_bundle, HttpGuardConfig(), load=False)
    assert asyncio.run(servicer.ServerReady(pb.ServerReadyRequest(), GrpcContext())).ready is False


def test_kserves_unguarded_multi_worker_server_is_refused():
    from hyperrec.serving.server import HyperrecModelServer

    with pytest.raises(ValueError, match="request guard"):
        HyperrecModelServer(enable_grpc=False, workers=2).start([])
