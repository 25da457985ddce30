"""The transformer's top-k path gives the answers of the full-score path: same items, same order, same scores,
on the tiny fixture bundle; requests the prefix cannot decide fall back to the full scores."""

from __future__ import annotations

import numpy as np
import pytest
from serving_helpers import fake_pseudonymize, make_server

from hyperrec.serving.server import build_models

URL = "/v1/models/ranker:predict"


class GraphScorer:
    """In-process predictor with both outputs of the bundle's graph: ``score`` (all) and ``top_k``."""

    def __init__(self, bundle, k: int | None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(bundle / "triton/ranker/1/model.onnx"))
        self.k = k
        self.calls: list[str] = []

    async def score(self, inputs, request_id):
        self.calls.append("full")
        return self.session.run(["scores"], inputs)[0]

    async def top_k(self, inputs, request_id):
        self.calls.append("top_k")
        ids, scores = self.session.run(["top_ids", "top_scores"], inputs)
        return ids, scores

    async def close(self):
        pass


def client_with(bundle, settings, scorer):
    models = build_models("transformer", bundle, settings, pseudonymize=fake_pseudonymize,
                          scorer_factory=lambda manifest: scorer)
    for model in models:
        model.load()
    return make_server(models)


def bodies(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    for i in range(n):
        history = [f"m{j:05d}" for j in rng.choice(60, size=int(rng.integers(1, 9)), replace=bool(i % 2))]
        yield {"user_id": f"u{i}", "history": history, "k": int(rng.choice([1, 3, 5, 10]))}


@pytest.mark.parametrize("max_per_category", [3, 1, None])
def test_top_k_answers_equal_the_full_score_answers(topk_bundle, serving_settings, max_per_category):
    settings = serving_settings(max_per_category=max_per_category, log_served=False)
    fast, full = GraphScorer(topk_bundle, 10), GraphScorer(topk_bundle, None)
    fast_client, full_client = client_with(topk_bundle, settings, fast), client_with(topk_bundle, settings, full)
    for body in bodies(60):
        expected = full_client.post(URL, json=body).json()
        answer = fast_client.post(URL, json=body).json()
        assert not answer["degraded"]
        assert ([(r["item_id"], r["score"]) for r in answer["recommendations"]]
                == [(r["item_id"], r["score"]) for r in expected["recommendations"]]), body
    assert set(full.calls) == {"full"}
    assert fast.calls.count("top_k") == 60
    if max_per_category == 1:  # a cap of one per category cannot fill k=10 from 10 items: those fetch all
        assert "full" in fast.calls
    if max_per_category is None:
        assert "full" not in fast.calls


def test_requests_the_prefix_cannot_decide_use_the_full_scores(topk_bundle, serving_settings):
    scorer = GraphScorer(topk_bundle, 10)
    client = client_with(topk_bundle, serving_settings(log_served=False), scorer)
    candidates = {"user_id": "u", "history": ["m00001"], "k": 3, "candidates": ["m00040", "m00041", "m00042"]}
    assert client.post(URL, json=candidates).status_code == 200
    assert scorer.calls == ["full"]  # a candidate list may lie outside the top k
    scorer.calls.clear()
    assert client.post(URL, json={"user_id": "u", "history": ["m00001"], "k": 11}).status_code == 200
    assert scorer.calls == ["full"]  # k above the graph's K
    blend = client_with(topk_bundle, serving_settings(popularity_weight=0.3, log_served=False), scorer)
    scorer.calls.clear()
    assert blend.post(URL, json={"user_id": "u", "history": ["m00001"], "k": 3}).status_code == 200
    assert scorer.calls == ["full"]  # the blend min-max-scales over every eligible item
