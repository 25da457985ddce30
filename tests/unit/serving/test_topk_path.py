"""The transformer's top-k path gives the answers of the full-score path: same items, same order, same scores,
on the tiny fixture bundle, with and without a cold slot; requests the prefix cannot decide fall back to the
full scores."""

from __future__ import annotations

import numpy as np
import pytest
from serving_helpers import COLD_ITEMS, fake_pseudonymize, make_server

from hyperrec.online.catalogue import Catalogue
from hyperrec.online.topk_ranking import TopK
from hyperrec.serving.server import build_models

URL = "/v1/models/ranker:predict"


class GraphScorer:
    """In-process predictor with both outputs of the bundle's graph: ``score`` (all) and ``top_k``."""

    def __init__(self, bundle, k: int | None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(bundle / "triton/ranker/1/model.onnx"))
        self.k = k
        self.cold_outputs = "cold_id" in {o.name for o in self.session.get_outputs()}
        self.calls: list[str] = []

    async def score(self, inputs, request_id):
        self.calls.append("full")
        return self.session.run(["scores"], inputs)[0]

    async def top_k(self, inputs, request_id):
        self.calls.append("top_k")
        cold = ["cold_id", "cold_score"] if self.cold_outputs else []
        return TopK(*self.session.run(["top_ids", "top_scores", *cold], inputs))

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
    fast_client, full_client = (
        client_with(topk_bundle, settings, fast),
        client_with(topk_bundle, settings, full),
    )
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


def cold_bodies(n: int, seed: int = 5):
    """Histories of 1..12 items (some beyond max_history = 8, so the graph sees only their tail), half of
    them holding cold items, with repeats."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        picks = rng.choice(60, size=int(rng.integers(1, 13)), replace=bool(i % 3 == 0)).tolist()
        if i % 2:
            picks += rng.choice(COLD_ITEMS, size=int(rng.integers(1, 4))).tolist()
            rng.shuffle(picks)
        yield {"user_id": f"u{i}", "history": [f"m{j:05d}" for j in picks], "k": int(rng.choice([3, 5, 10]))}


def slot_fires(scorer: GraphScorer, slot, body) -> bool:
    """Whether the cold slot changes the full score vector of ``body``'s history (the rule on all scores)."""
    from hyperrec.features import encode_histories, encode_segments
    from hyperrec.online.cold_items import reserve_cold_slot

    history = np.array([int(item[1:]) for item in body["history"]])
    inputs = {"history": encode_histories([history], 8), "segment": encode_segments([None])}
    scores = scorer.session.run(["scores"], inputs)[0][0].astype(np.float64)
    eligible = np.ones(scores.size, dtype=bool)
    eligible[history] = False
    return not np.array_equal(reserve_cold_slot(scores, slot, eligible), scores)


@pytest.mark.parametrize("max_per_category", [3, None])
def test_with_a_cold_slot_top_k_answers_equal_the_full_score_answers(cold_topk_bundle, serving_settings,
                                                                     max_per_category):
    settings = serving_settings(max_per_category=max_per_category, log_served=False)
    fast, full = GraphScorer(cold_topk_bundle, 10), GraphScorer(cold_topk_bundle, None)
    assert fast.cold_outputs
    fast_client, full_client = (
        client_with(cold_topk_bundle, settings, fast),
        client_with(cold_topk_bundle, settings, full),
    )
    slot = Catalogue.from_bundle(cold_topk_bundle).cold_slot
    decided = {True: 0, False: 0}  # answers the prefix decided, by whether the slot fired
    undecided = 0
    for body in cold_bodies(160):
        expected = full_client.post(URL, json=body).json()
        fast.calls.clear()
        answer = fast_client.post(URL, json=body).json()
        assert not answer["degraded"]
        assert ([(r["item_id"], r["score"]) for r in answer["recommendations"]]
                == [(r["item_id"], r["score"]) for r in expected["recommendations"]]), body
        if fast.calls == ["top_k"]:
            decided[slot_fires(full, slot, body)] += 1
        else:
            assert fast.calls == ["top_k", "full"]
            undecided += 1
    assert set(full.calls) == {"full"}
    assert decided[True] >= 5 and decided[False] >= 5, decided  # the fast path served both kinds of answer
    if slot.position == 9:  # a top 10 holding two cold items has too few warm ones for rank 9: full scores
        assert undecided >= 5


def test_a_cold_slot_without_the_cold_outputs_keeps_the_full_scores(cold_topk_bundle, serving_settings):
    scorer = GraphScorer(cold_topk_bundle, 10)
    scorer.cold_outputs = False  # a graph exported before the cold outputs existed
    client = client_with(cold_topk_bundle, serving_settings(log_served=False), scorer)
    assert client.post(URL, json={"user_id": "u", "history": ["m00001"], "k": 3}).status_code == 200
    assert scorer.calls == ["full"]


def test_a_prefix_thinned_by_history_beyond_the_encoded_tail_cannot_decide_the_slot(cold_topk_bundle,
                                                                                    serving_settings):
    """The graph excludes only the last max_history items: older history items it ranks high are dropped
    from the prefix by the transformer, leaving fewer warm items than the slot's rank. Those need all
    scores."""
    from hyperrec.features import encode_histories, encode_segments

    settings = serving_settings(log_served=False)
    fast, full = GraphScorer(cold_topk_bundle, 10), GraphScorer(cold_topk_bundle, None)
    fast_client, full_client = (
        client_with(cold_topk_bundle, settings, fast),
        client_with(cold_topk_bundle, settings, full),
    )
    slot = Catalogue.from_bundle(cold_topk_bundle).cold_slot
    rng = np.random.default_rng(17)
    fired = 0
    for i in range(60):
        tail = rng.choice(60, size=8, replace=False)
        inputs = {"history": encode_histories([tail], 8), "segment": encode_segments([None])}
        warm = [int(j) for j in fast.session.run(["top_ids"], inputs)[0][0] if int(j) not in COLD_ITEMS]
        older = warm[
            : len(warm) - slot.position + 1
        ]  # seen before the tail: the prefix keeps position - 1 warm
        body = {"user_id": f"u{i}", "history": [f"m{j:05d}" for j in [*older, *tail.tolist()]], "k": 3}
        fast.calls.clear()
        answer = fast_client.post(URL, json=body).json()
        assert [(r["item_id"], r["score"]) for r in answer["recommendations"]] == [
            (r["item_id"], r["score"]) for r in full_client.post(URL, json=body).json()["recommendations"]
        ]
        assert fast.calls == ["top_k", "full"], body
        fired += slot_fires(full, slot, body)
    assert fired >= 5
