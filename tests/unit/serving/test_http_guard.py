"""Serving is hard to break from outside (issue 11, findings 3, 5 and 9): crafted bodies are 4xx, never 500;
content types are negotiated; bodies past ``serving.http.max_body_bytes`` are refused while they are read; a
4xx is one log line that echoes none of the client's values."""

import asyncio
import json
import logging

import pytest
from serving_helpers import transformer_server

URL = "/v1/models/ranker:predict"
FEEDBACK = "/v1/models/feedback:predict"
GOOD = b'{"user_id": "u1", "history": ["m00001"], "k": 3}'
DEEP = b"[" * 100_000 + b"]" * 100_000
JSON_UTF8 = "application/json; charset=utf-8"
CLOUDEVENT = {"specversion": "1.0", "id": "1", "source": "x", "type": "t", "time": "2026-01-01T00:00:00Z",
              "data": "not an object"}


@pytest.fixture
def client(demo_bundle, serving_settings):
    return transformer_server(demo_bundle, serving_settings())




def test_a_json_content_type_with_utf8_charset_is_accepted(client):
    response = client.post(URL, content=GOOD, headers={"content-type": JSON_UTF8})
    assert response.status_code == 200, response.text
    assert len(response.json()["recommendations"]) == 3


#: The crafted bodies of the issue that gave 500s, and their neighbours: (content type, body, status).
CRAFTED = {
    "lone surrogate, json+charset": (JSON_UTF8, b'{"user_id": "\\ud800", "k": 3}', 400),
    "lone surrogate, plain json": ("application/json", b'{"user_id": "\\ud800", "k": 3}', 400),
    "lone surrogate in a history item": (JSON_UTF8, b'{"user_id": "u", "history": ["\\udfff"]}', 400),
    "lone surrogate in a key": (JSON_UTF8, b'{"\\ud800": 1, "user_id": "u"}', 400),
    "100,000 brackets, text/plain": ("text/plain", DEEP, 415),
    "100,000 brackets, json+charset": (JSON_UTF8, DEEP, 400),
    "100,000 brackets, plain json": ("application/json", DEEP, 400),
    "structured CloudEvent with string data": ("application/json", json.dumps(CLOUDEVENT).encode(), 400),
    "structured CloudEvent content type": (
        "application/cloudevents+json",
        json.dumps(CLOUDEVENT).encode(),
        415,
    ),
    "form-encoded (curl's default)": ("application/x-www-form-urlencoded", GOOD, 415),
    "json in another charset": ("application/json; charset=latin-1", GOOD, 415),
    "invalid UTF-8": (JSON_UTF8, b'{"user_id": "\xff\xfe"}', 400),
    "a number past float range": (JSON_UTF8, b'{"user_id": "u", "k": 1e400}', 400),
    "a JSON list, not an object": (JSON_UTF8, b"[1, 2, 3]", 400),
}


@pytest.mark.parametrize(("content_type", "body", "status"), CRAFTED.values(), ids=CRAFTED.keys())
@pytest.mark.parametrize("path", [URL, FEEDBACK])
def test_crafted_bodies_are_4xx_with_a_json_error_never_500(client, path, content_type, body, status):
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["error"], str)


def test_binary_cloudevents_are_refused_with_415(client):
    headers = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "x",
               "ce-type": "t"}
    assert client.post(URL, content=GOOD, headers=headers).status_code == 415


def test_a_body_past_the_limit_is_413(demo_bundle, serving_settings):
    client = transformer_server(demo_bundle, serving_settings(http={"max_body_bytes": 2048}))
    big = json.dumps({"user_id": "u1", "history": ["m00001"] * 400}).encode()
    assert len(big) > 2048
    response = client.post(URL, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "2048" in response.json()["error"]
    chunked = client.post(
        URL, content=iter([big[:1000], big[1000:]]), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413  # no content-length: counted while reading
    assert client.post(URL, content=GOOD, headers={"content-type": "application/json"}).status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read_whole():
    """The guard stops pulling body chunks once the limit is passed; the app never sees the body."""
    from hyperrec.online.settings import HttpGuardConfig
    from hyperrec.serving.http_guard import RequestGuard

    pulled, reached_app, sent = [], [], []

    async def app(scope, receive, send):
        reached_app.append(True)

    async def receive():
        pulled.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": len(pulled) < 1000}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(RequestGuard(app, HttpGuardConfig(max_body_bytes=4096))(scope, receive, send))
    assert sent[0]["status"] == 413 and not reached_app
    assert len(pulled) == 5  # 4 KiB allowed: the fifth chunk crosses it, the other 995 are never read


def test_history_and_item_id_lengths_come_from_config(demo_bundle, serving_settings):
    client = transformer_server(demo_bundle, serving_settings(max_history=3, http={"max_item_id_chars": 8}))
    too_long = client.post(URL, json={"user_id": "u1", "history": ["m00001"] * 4})
    assert too_long.status_code == 400 and "history" in too_long.json()["error"]
    long_id = client.post(URL, json={"user_id": "u1", "history": ["m" * 9]})
    assert long_id.status_code == 400 and "8 characters" in long_id.json()["error"]


PLANTED = "jane.doe.planted@example.org"


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": PLANTED * 20},
        {"user_id": "u1", PLANTED: 1},
        {"user_id": "u1", "k": PLANTED},
        {"user_id": "u1", "model": PLANTED},
        {"user_id": "u1", "history": [{"item_id": "m00001", "event": PLANTED}]},
        {"user_id": "u1", "context": {PLANTED: "x"}},
        {"user_id": "u1", "request_id": PLANTED},
        {"user_id": "u1", "history": [PLANTED * 1000]},
    ],
    ids=[
        "user_id too long",
        "unknown field",
        "k",
        "model",
        "event",
        "context field",
        "request_id",
        "1 MB item",
    ],
)
def test_a_4xx_is_one_log_line_without_the_clients_values(client, caplog, body):
    caplog.set_level(logging.DEBUG)
    response = client.post(URL, json=body)
    assert 400 <= response.status_code < 500
    assert PLANTED not in response.text and len(response.json()["error"]) <= 300
    assert PLANTED not in caplog.text
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]


def test_a_feedback_4xx_echoes_no_value_either(client, caplog):
    caplog.set_level(logging.DEBUG)
    response = client.post(FEEDBACK, json={"request_id": "r1", "user_id": "u1",
                                           "events": [{"type": PLANTED, "item_id": "m00001"}]})
    assert response.status_code == 400 and "events[0].type" in response.json()["error"]
    assert PLANTED not in response.text and PLANTED not in caplog.text
