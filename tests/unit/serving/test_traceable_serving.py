"""Traceable answers and feedback, and the embedded champion/challenger split, through KServe's REST app."""

import asyncio

import pytest
from serving_helpers import OnnxScorer, fake_pseudonymize, make_server

from hyperrec.experiments.ctr import tally_feedback
from hyperrec.online.feedback import read_feedback
from hyperrec.online.settings import SplitConfig
from hyperrec.serving.server import build_models

URL = "/v1/models/ranker:predict"
FEEDBACK = "/v1/models/feedback:predict"


@pytest.fixture(scope="module")
def challenger_bundle(tmp_path_factory):
    from hyperrec.export.tiny import build_demo_bundle

    out = tmp_path_factory.mktemp("challenger") / "ranker"
    build_demo_bundle(out, n_items=60, max_history=8, dynamo=False, version="demo-2", seed=1)
    return out


def serve(bundle, settings, challenger_bundle=None):
    models = build_models(
        "transformer", bundle, settings, pseudonymize=fake_pseudonymize,
        scorer_factory=lambda manifest: OnnxScorer(manifest, bundle),
        challenger_scorer_factory=(lambda manifest: OnnxScorer(manifest, challenger_bundle)),
    )
    for model in models:
        model.load()
    return make_server(models), models


def close(models):
    asyncio.run(models[0].close())
    models[1].stop()


def test_an_answer_says_who_served_it_and_its_slate_is_logged_for_the_join(demo_bundle, serving_settings):
    settings = serving_settings(registered_version="7")
    client, models = serve(demo_bundle, settings)
    response = client.post(URL, json={"user_id": "u1", "history": ["m00003"], "k": 4},
                           headers={"x-request-id": "trace-9"})
    answer = response.json()
    assert answer["request_id"] == "trace-9" == response.headers["x-request-id"]
    assert answer["model"] == {"name": "ranker", "version": "demo-1", "registered_version": "7"}
    assert answer["revision"] == "champion" and answer["policy"]["name"] == "ranker"
    shown = [r["item_id"] for r in answer["recommendations"]]
    assert [r["rank"] for r in answer["recommendations"]] == [1, 2, 3, 4]
    assert [r["propensity"] for r in answer["recommendations"]] == [1.0] * 4

    click = {"request_id": "trace-9", "user_id": "u1", "events": [{"type": "click", "item_id": shown[2]}]}
    assert client.post(FEEDBACK, json=click).json()["revision"] == "champion"
    close(models)  # flushes the served records

    records = read_feedback(settings.feedback_dir).records
    served = [r for r in records if r.get("source") == "served"]
    assert [(r["item_id"], r["position"], r["type"]) for r in served] == [
        (item, position, "impression") for position, item in enumerate(shown)]
    assert {(r["request_id"], r["user"], r["revision"], r["model_version"], r["bundle_version"], r["policy"])
            for r in served} == {("trace-9", fake_pseudonymize("u1"), "champion", "7", "demo-1", "ranker")}
    (clicked,) = [r for r in records if r["type"] == "click"]
    assert (clicked["revision"], clicked["model_version"], clicked["policy"]) == ("champion", "7", "ranker")
    # What the canary controller reads: one shown pair clicked out of four, for version 7.
    counts = tally_feedback(records, versions={"champion": "7"}).counts("champion")
    assert (counts.impressions, counts.clicks) == (4, 1)


def test_the_split_sends_requests_to_the_challenger_by_share_and_labels_everything(
    demo_bundle, challenger_bundle, serving_settings
):
    settings = serving_settings(
        split=SplitConfig(
            challenger_bundle_dir=challenger_bundle, challenger_percent=100, challenger_registered_version="8"
        )
    )
    client, models = serve(demo_bundle, settings, challenger_bundle)
    answer = client.post(URL, json={"user_id": "u2", "history": ["m00001"], "request_id": "c-1"}).json()
    assert answer["revision"] == "challenger"
    assert answer["model"] == {"name": "ranker", "version": "demo-2", "registered_version": "8"}
    item = answer["recommendations"][0]["item_id"]
    feedback = client.post(FEEDBACK, json={"request_id": "c-1", "user_id": "u2",
                                           "events": [{"type": "click", "item_id": item}]})
    assert feedback.json()["revision"] == "challenger"

    assert client.get("/hyperrec/split").json()["challenger_percent"] == 100
    moved = client.put("/hyperrec/split", json={"challenger_percent": 0})
    assert moved.status_code == 200 and moved.json()["revisions"]["challenger"]["registered_version"] == "8"
    assert client.post(URL, json={"user_id": "u2", "history": ["m00001"]}).json()["revision"] == "champion"
    refused = client.put("/hyperrec/split", json={"challenger_percent": 101})
    assert refused.status_code == 400 and "0..100" in refused.text

    metrics = client.get("/metrics").text
    for revision in ("champion", "challenger"):
        assert (
            f'hyperrec_stage_seconds_count{{model="ranker",revision="{revision}",stage="preprocess"}}'
            in metrics
        )
    close(models)
    records = read_feedback(settings.feedback_dir).records
    tally = tally_feedback(records, versions={"challenger": "8"})
    assert tally.counts("challenger").clicks == 1 and tally.unattributed_clicks == 0


def test_without_a_challenger_there_is_no_split_endpoint(demo_bundle, serving_settings):
    client, models = serve(demo_bundle, serving_settings())
    assert client.get("/hyperrec/split").status_code == 404
    close(models)


def test_feedback_about_an_answer_no_longer_in_memory_is_left_unlabelled_under_a_split(
    demo_bundle, challenger_bundle, serving_settings
):
    settings = serving_settings(
        split=SplitConfig(challenger_bundle_dir=challenger_bundle, challenger_percent=50)
    )
    client, models = serve(demo_bundle, settings, challenger_bundle)
    body = {"request_id": "gone", "user_id": "u", "events": [{"type": "click", "item_id": "m00001"}]}
    assert "revision" not in client.post(FEEDBACK, json=body).json()  # never a guessed revision
    close(models)
