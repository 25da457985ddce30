"""The bandit inside the transformer: it learns from served slates and clicks, its sqlite state survives a
restart, and a dead Redis means the plain ranking with no error."""

import asyncio

import pytest
from fastapi.testclient import TestClient

from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.settings import ServingConfig
from hyperrec.serving.server import HyperrecModelServer, build_models, create_rest_app

URL = "/v1/models/ranker:predict"
FEEDBACK = "/v1/models/feedback:predict"
REQUEST = {"user_id": "u1", "history": ["m00003", "m00007"], "k": 3}


class OnnxScorer:
    """The bundle's ONNX on onnxruntime, in process (the predictor's arithmetic without a socket)."""

    def __init__(self, bundle):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(bundle / "triton/ranker/1/model.onnx"))

    async def score(self, inputs, request_id):
        return self.session.run(["scores"], inputs)[0]

    async def close(self):
        pass


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from hyperrec.export.tiny import build_demo_bundle

    out = tmp_path_factory.mktemp("bundle") / "ranker"
    build_demo_bundle(out, n_items=40, max_history=8, dynamo=False)
    return out


class Transformer:
    """One transformer process's models behind KServe's REST app; ``restart`` builds fresh ones."""

    def __init__(self, bundle, serving, bandit):
        self.bundle, self.serving, self.bandit = bundle, serving, bandit
        self.start()

    def start(self):
        self.models = build_models(
            "transformer",
            self.bundle,
            self.serving,
            pseudonymize=lambda u: "p:" + u,
            scorer_factory=lambda manifest: OnnxScorer(self.bundle),
            bandit=self.bandit,
        )
        for model in self.models:
            model.load()
        server = HyperrecModelServer(enable_grpc=False)
        for model in self.models:
            server.register_model(model)
        self.client = TestClient(create_rest_app(server), raise_server_exceptions=False)

    def stop(self):
        asyncio.run(self.models[0].close())
        self.models[1].stop()

    def restart(self):
        self.stop()
        self.start()

    def flush(self):
        self.models[0].journal.flush()


def shown(answer):
    return [r["item_id"] for r in answer["recommendations"]]


def test_clicks_reorder_the_slate_and_the_sqlite_state_survives_a_restart(bundle, tmp_path):
    bandit = BanditConfig(enabled=True, policy="epsilon_greedy", epsilon=0.0, top_n=6, seed=3,
                          store_url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    transformer = Transformer(bundle, ServingConfig(feedback_dir=tmp_path / "feedback"), bandit)
    first = transformer.client.post(URL, json=REQUEST).json()
    assert first["policy"]["name"] == "epsilon_greedy" and first["policy"]["plain_ranking_because"] is None
    plain = shown(first)  # no feedback yet: the policy shows the plain ranking
    favourite = plain[2]
    for i in range(25):  # users click only the third item
        answer = transformer.client.post(URL, json={**REQUEST, "request_id": f"r{i}"}).json()
        events = [{"type": "click", "item_id": favourite}] if favourite in shown(answer) else []
        if events:
            assert transformer.client.post(FEEDBACK, json={"request_id": f"r{i}", "user_id": "u1",
                                                           "events": events}).status_code == 200
        transformer.flush()  # the served slates count as impressions (written off the request path)
    learned = shown(transformer.client.post(URL, json=REQUEST).json())
    assert learned[0] == favourite and learned != plain

    transformer.restart()  # a new process: nothing in memory, the state on disk
    after = transformer.client.post(URL, json=REQUEST).json()
    assert shown(after)[0] == favourite
    transformer.stop()


def test_redis_down_serves_the_plain_ranking_with_no_error(bundle, tmp_path, redis_server):
    bandit = BanditConfig(enabled=True, policy="thompson", top_n=6, seed=1, store_url=redis_server.url,
                          unavailable_backoff_s=0.0)
    transformer = Transformer(bundle, ServingConfig(feedback_dir=tmp_path / "feedback"), bandit)
    healthy = transformer.client.post(URL, json=REQUEST).json()
    assert healthy["policy"]["plain_ranking_because"] is None
    errors_before, plain_before = errors_total(), plain_total()
    redis_server.kill()
    statuses, reasons, slates = [], set(), set()
    for i in range(10):
        response = transformer.client.post(URL, json={**REQUEST, "request_id": f"down-{i}"})
        statuses.append(response.status_code)
        answer = response.json()
        reasons.add(answer["policy"]["plain_ranking_because"])
        slates.add(tuple(shown(answer)))
        click = {
            "request_id": f"down-{i}",
            "user_id": "u1",
            "events": [{"type": "click", "item_id": shown(answer)[0]}],
        }
        statuses.append(transformer.client.post(FEEDBACK, json=click).status_code)
    transformer.flush()
    assert set(statuses) == {200}
    assert reasons == {"state_unavailable"} and len(slates) == 1  # the one plain ranking
    assert plain_total() == plain_before + 10
    assert errors_total() == errors_before  # not one error, of any kind
    transformer.stop()


def errors_total():
    from prometheus_client import REGISTRY

    return sum(sample.value for metric in REGISTRY.collect() if metric.name == "hyperrec_errors"
               for sample in metric.samples if sample.name == "hyperrec_errors_total")


def plain_total():
    from prometheus_client import REGISTRY

    labels = {"model": "ranker", "reason": "state_unavailable", "revision": "champion"}
    return REGISTRY.get_sample_value("hyperrec_bandit_plain_total", labels) or 0.0
