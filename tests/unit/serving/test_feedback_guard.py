"""The feedback endpoint accepts only plausible events about real items, and optionally a bearer token
(issue 11, finding 5 and the feedback authentication)."""

import time

import pytest
from serving_helpers import transformer_server

from hyperrec.online.feedback import read_feedback

FEEDBACK = "/v1/models/feedback:predict"
TOKEN = "feedback-token-for-tests"




def body(**event):
    return {"request_id": "r-1", "user_id": "u1", "events": [{"type": "click", "item_id": "m00001", **event}]}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"item_id": "no-such-item"}, "events[0].item_id"),
        ({"timestamp": 1e20}, "events[0].timestamp"),
        ({"timestamp": 0}, "events[0].timestamp"),
        ({"timestamp": time.time() + 86_400 * 30}, "events[0].timestamp"),
        ({"type": "rating", "value": 1e308}, "events[0].value"),
        ({"type": "dwell", "value": 1e12}, "events[0].value"),
    ],
    ids=[
        "unknown item",
        "timestamp 1e20",
        "timestamp 1970",
        "a month ahead",
        "value 1e308",
        "dwell 30,000 years",
    ],
)
def test_implausible_feedback_is_400_naming_the_field(demo_bundle, serving_settings, event, field):
    settings = serving_settings()
    client = transformer_server(demo_bundle, settings)
    response = client.post(FEEDBACK, json=body(**event))
    assert response.status_code == 400 and field in response.json()["error"], response.text
    assert read_feedback(settings.feedback_dir).records == []


def test_plausible_feedback_is_still_accepted(demo_bundle, serving_settings):
    client = transformer_server(demo_bundle, serving_settings())
    ok = client.post(FEEDBACK, json=body(type="rating", value=4.5, timestamp=time.time() - 3600))
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


def test_with_a_feedback_token_only_bearers_may_append(demo_bundle, serving_settings, monkeypatch):
    monkeypatch.setenv("HYPERREC_TEST_FEEDBACK_TOKEN", TOKEN)
    settings = serving_settings(http={"feedback_token_env": "HYPERREC_TEST_FEEDBACK_TOKEN"})
    client = transformer_server(demo_bundle, settings)
    assert client.post(FEEDBACK, json=body()).status_code == 401
    assert client.post(FEEDBACK, json=body(), headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.post(FEEDBACK, json=body(), headers={"authorization": "Basic " + TOKEN}).status_code == 401
    ok = client.post(FEEDBACK, json=body(), headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert len(read_feedback(settings.feedback_dir).records) == 1
    # recommendations stay open: the token guards only the log
    assert client.post("/v1/models/ranker:predict", json={"user_id": "u1"}).status_code == 200


def test_without_the_env_variable_feedback_is_open(demo_bundle, serving_settings, monkeypatch):
    monkeypatch.delenv("HYPERREC_FEEDBACK_TOKEN", raising=False)
    client = transformer_server(demo_bundle, serving_settings())
    assert client.post(FEEDBACK, json=body()).status_code == 200
