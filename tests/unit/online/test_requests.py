"""Every malformed request is an InvalidRequest whose message says what to fix."""

import pytest

from hyperrec.online.errors import InvalidRequest, UnknownModel
from hyperrec.online.requests import HistoryEvent, parse_request
from hyperrec.online.settings import ServingConfig

SETTINGS = ServingConfig(max_k=50, max_history=5, max_candidates=3)


def parse(body, **kwargs):
    return parse_request(
        body, settings=SETTINGS, pseudonymize=lambda raw: "p:" + raw, model_name="ranker", **kwargs
    )


def test_a_full_request_is_parsed_and_the_user_id_pseudonymized():
    request = parse({
        "user_id": "u1", "k": 5, "history": [{"item_id": "a", "event": "click"}, "b", 7],
        "candidates": ["a", 3], "context": {"device": "mobile", "query": "space"}, "explain": True,
        "model": "ranker", "request_id": "req-1",
    })
    assert request.user == "p:u1"
    assert request.history == (HistoryEvent("a", "click"), HistoryEvent("b"), HistoryEvent("7"))
    assert request.candidates == ("a", "3")
    assert (request.k, request.explain, request.request_id) == (5, True, "req-1")
    assert request.context.device == "mobile"


def test_defaults_and_request_id_from_the_header():
    request = parse(b'{"user_id": 42}', header_request_id="hdr-9")
    assert (request.user, request.k, request.history, request.candidates) == ("p:42", 10, (), None)
    assert request.request_id == "hdr-9"
    assert len(parse({"user_id": "u"}).request_id) == 32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ({}, "user_id is required"),
        ({"user_id": None}, "user_id is required"),
        ({"user_id": ["u"]}, "user_id must be a string or an integer"),
        ({"user_id": True}, "user_id must be a string or an integer"),
        ({"user_id": "  "}, "must not be empty"),
        ({"user_id": "u" * 300}, "longer than"),
        ({"user_id": "u", "k": 0}, "k must be between 1 and 50"),
        ({"user_id": "u", "k": -3}, "k must be between 1 and 50"),
        ({"user_id": "u", "k": 51}, "k must be between 1 and 50"),
        ({"user_id": "u", "k": "10"}, "k must be an integer"),
        ({"user_id": "u", "k": 2.5}, "k must be an integer"),
        ({"user_id": "u", "k": True}, "k must be an integer"),
        ({"user_id": "u", "history": "a,b"}, "history must be a list"),
        ({"user_id": "u", "history": ["a"] * 6}, "at most 5 are accepted"),
        ({"user_id": "u", "history": [{"event": "click"}]}, "history[0].item_id is required"),
        ({"user_id": "u", "history": [{"item_id": "a", "event": "teleport"}]}, "history[0].event must be"),
        ({"user_id": "u", "history": [{"item_id": "a", "when": 1}]}, "unknown field"),
        ({"user_id": "u", "history": [1.5]}, "history[0] must be a string or an integer"),
        ({"user_id": "u", "candidates": "a"}, "candidates must be a list"),
        ({"user_id": "u", "candidates": []}, "must not be empty"),
        ({"user_id": "u", "candidates": ["a", "b", "c", "d"]}, "at most 3 are accepted"),
        ({"user_id": "u", "candidates": [None]}, "candidates[0]"),
        ({"user_id": "u", "context": "mobile"}, "context must be an object"),
        ({"user_id": "u", "context": {"device": 3}}, "context.device must be a string"),
        ({"user_id": "u", "context": {"weather": "sun"}}, "context has unknown field"),
        ({"user_id": "u", "explain": "yes"}, "explain must be true or false"),
        ({"user_id": "u", "request_id": "bad id!"}, "request_id must be"),
        ({"user_id": "u", "colour": "red"}, "unknown field(s) ['colour']"),
    ],
)
def test_bad_requests_are_rejected_with_a_clear_message(body, message):
    with pytest.raises(InvalidRequest) as info:
        parse(body)
    assert message in str(info.value)


def test_an_unknown_model_is_named_in_the_error():
    with pytest.raises(
        UnknownModel, match="model names a model this server does not serve; it serves 'ranker'"
    ):
        parse({"user_id": "u", "model": "other"})
