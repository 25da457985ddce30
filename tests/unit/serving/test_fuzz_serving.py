"""Property-based fuzzing of the request path (issue 11): whatever a client sends, the parser raises only
``InvalidRequest`` and the served app answers below 500, within a client timeout. Bounded by example counts
(not time), so a run does the same work however loaded the machine is; no example database is written
(``database=None``: tests write only to temporary folders)."""

import json
import tempfile
import threading

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from serving_helpers import fake_pseudonymize, transformer_server

from hyperrec.online.errors import InvalidRequest
from hyperrec.online.feedback import parse_feedback
from hyperrec.online.requests import parse_request
from hyperrec.online.settings import ServingConfig

# Hypothesis caches what it learns of the code under ./.hypothesis; keep that in a temporary folder, set
# before any strategy is built.
HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="hyperrec-hypothesis-")
set_hypothesis_home_dir(HYPOTHESIS_HOME.name)

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SERVED = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


KEYS = (
    st.sampled_from(
        [
            "user_id",
            "history",
            "candidates",
            "k",
            "context",
            "explain",
            "model",
            "request_id",
            "events",
            "type",
            "item_id",
            "value",
            "timestamp",
            "event",
            "device",
            "query",
        ]
    )
    | st.text()
)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.sampled_from(["m00001", "m00002", "click", "rating", "dwell", "ranker", "\ud800"]))
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=20,
)
BODIES = st.dictionaries(KEYS, JSONISH, max_size=8)


@FUZZ
@given(BODIES)
def test_the_recommend_parser_raises_only_invalid_request(body):
    try:
        parse_request(body, settings=ServingConfig(), pseudonymize=fake_pseudonymize, model_name="ranker")
    except InvalidRequest as exc:
        assert len(str(exc)) <= 300


@FUZZ
@given(BODIES)
def test_the_feedback_parser_raises_only_invalid_request(body):
    try:
        parse_feedback(body, pseudonymize=fake_pseudonymize, max_events=10, known_item=lambda item: True)
    except InvalidRequest as exc:
        assert len(str(exc)) <= 300


@pytest.fixture(scope="module")
def served(demo_bundle, tmp_path_factory):
    """The transformer's REST app behind a real uvicorn on 127.0.0.1 (in a thread of this process)."""
    import uvicorn

    from hyperrec.serving.server import free_port

    settings = ServingConfig(feedback_dir=tmp_path_factory.mktemp("feedback"))
    app = transformer_server(demo_bundle, settings).app
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(200):  # bounded wait for the socket
            try:
                client.get("/v2/health/live")
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        yield client
    server.should_exit = True
    thread.join(timeout=10)


CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8", "text/plain",
    "application/cloudevents+json", "application/octet-stream", "", "application/json; charset=latin-1",
    "multipart/form-data; boundary=x",
])
PATHS = st.sampled_from(
    [
        "/v1/models/ranker:predict",
        "/v1/models/feedback:predict",
        "/v1/models/ranker:explain",
        "/v1/models/feedback:explain",
        "/v2/models/ranker/infer",
        "/v2/models/ranker/versions/x/infer",
        "/v2/repository/models/ranker/unload",
    ]
)


def _encode(body) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8", errors="surrogatepass")


RAW = st.one_of(BODIES.map(_encode), st.binary(max_size=256), st.integers(1, 3000).map(lambda n: b"[" * n))


@SERVED
@given(path=PATHS, content_type=CONTENT_TYPES, body=RAW)
def test_the_served_app_never_answers_5xx_and_never_hangs(served, path, content_type, body):
    headers = {"content-type": content_type} if content_type else {}
    response = served.post(path, content=body, headers=headers)  # a hang fails on the client's timeout
    assert response.status_code < 500, (response.status_code, response.text[:300])
