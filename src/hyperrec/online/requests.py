"""Recommendation requests: JSON in, typed objects out, every problem an ``InvalidRequest`` with a clear
message.

A request looks like::

    {"user_id": "u42",                                  # required, raw: pseudonymized here, never kept
     "history": [{"item_id": "m1", "event": "click"}, "m7", 12],   # optional, oldest first
     "candidates": ["m3", "m9"],                        # optional: rank only these
     "k": 10,                                           # optional, 1..max_k
     "context": {"device": "mobile", "query": "space"}, # optional
     "explain": true,                                   # optional
     "model": "ranker",                                 # optional: must be the served model
     "request_id": "abc-123"}                           # optional: else the x-request-id header or a new id

Item ids may be strings or integers (MovieLens ids); they are compared as strings.

Messages name the field and the rule, never the client's value: they are answered and logged (a planted
e-mail address or a megabyte of text must not come back or reach a log).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from hyperrec.data.labels import EVENT_TYPES
from hyperrec.online.errors import InvalidRequest, UnknownModel
from hyperrec.online.settings import ServingConfig

_FIELDS = {"user_id", "history", "candidates", "k", "context", "explain", "model", "request_id"}
_CONTEXT_FIELDS = {"device", "query"}
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
#: Defaults of ``serving.http.max_context_chars`` / ``max_item_id_chars`` for callers without settings.
MAX_CONTEXT_CHARS = 512
MAX_ITEM_ID_CHARS = 256


@dataclass(frozen=True)
class HistoryEvent:
    """One past interaction sent with a request."""

    item_id: str
    event: str = "view"


@dataclass(frozen=True)
class RequestContext:
    device: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class RecommendRequest:
    """A validated request. ``user`` is the pseudonym: the raw id never leaves ``parse_request``."""

    user: str
    history: tuple[HistoryEvent, ...]
    candidates: tuple[str, ...] | None
    k: int
    context: RequestContext
    explain: bool
    request_id: str


def decode_body(body: Any) -> Mapping[str, Any]:
    """The JSON object of a request body given as dict, bytes or str.

    orjson, as KServe's own decoder: it refuses nesting deeper than 1024 levels (no RecursionError), lone
    surrogates, invalid UTF-8 and numbers past float range.
    """
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = orjson.loads(body)
        except (orjson.JSONDecodeError, UnicodeError, RecursionError):
            raise InvalidRequest(
                "request body is not valid JSON (UTF-8, nested at most 1024 levels)"
            ) from None
    if not isinstance(body, Mapping):
        raise InvalidRequest(f"request body must be a JSON object, got {_kind(body)}")
    return body


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: Any, where: str = "request_id") -> str:
    if not isinstance(value, str) or not _REQUEST_ID_RE.match(value):
        raise InvalidRequest(f"{where} must be 1-128 characters of [A-Za-z0-9_.:-]")
    return value


def parse_user_id(body: Mapping[str, Any], pseudonymize: Callable[[str], str], limit: int) -> str:
    """The pseudonym of the body's required ``user_id`` (string or integer)."""
    if "user_id" not in body or body["user_id"] is None:
        raise InvalidRequest("user_id is required")
    raw = body["user_id"]
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InvalidRequest(f"user_id must be a string or an integer, got {_kind(raw)}")
    raw = text(str(raw), "user_id").strip()
    if not raw:
        raise InvalidRequest("user_id must not be empty")
    if len(raw) > limit:
        raise InvalidRequest(f"user_id is longer than {limit} characters")
    return pseudonymize(raw)


def parse_request(
    body: Any,
    *,
    settings: ServingConfig,
    pseudonymize: Callable[[str], str],
    model_name: str,
    header_request_id: str | None = None,
) -> RecommendRequest:
    """Validate a request body (see the module doc) against the serving limits."""
    body = decode_body(body)
    check_fields(body, _FIELDS, "the request")
    if body.get("model") is not None and body["model"] != model_name:
        raise UnknownModel(f"model names a model this server does not serve; it serves {model_name!r}")
    user = parse_user_id(body, pseudonymize, settings.max_user_id_chars)

    k = body.get("k", settings.default_k)
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidRequest(f"k must be an integer, got {_kind(k)}")
    if k <= 0 or k > settings.max_k:
        raise InvalidRequest(f"k must be between 1 and {settings.max_k}")

    id_chars = settings.http.max_item_id_chars
    history = _parse_history(body.get("history"), settings.max_history, id_chars)
    candidates = _parse_candidates(body.get("candidates"), settings.max_candidates, id_chars)
    context = _parse_context(body.get("context"), settings.http.max_context_chars)
    explain = body.get("explain", settings.explain_by_default)
    if not isinstance(explain, bool):
        raise InvalidRequest(f"explain must be true or false, got {_kind(explain)}")

    if body.get("request_id") is not None:
        request_id = valid_request_id(body["request_id"])
    elif header_request_id and _REQUEST_ID_RE.match(header_request_id):
        request_id = header_request_id
    else:
        request_id = new_request_id()
    return RecommendRequest(
        user=user, history=history, candidates=candidates, k=k, context=context, explain=explain,
        request_id=request_id,
    )


def item_id(value: Any, where: str, limit: int = MAX_ITEM_ID_CHARS) -> str:
    """An item id (string or integer) as a string of 1..``limit`` characters."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidRequest(f"{where} must be a string or an integer item id, got {_kind(value)}")
    value = text(str(value), where)
    if not value or len(value) > limit:
        raise InvalidRequest(f"{where} must be 1-{limit} characters")
    return value


def text(value: str, where: str) -> str:
    """``value`` if it can be written as UTF-8 (a decoded JSON string may hold a lone surrogate)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(f"{where} must be valid Unicode text (no lone surrogates)") from None
    return value


def check_fields(body: Mapping[str, Any], allowed: set[str] | tuple[str, ...], where: str) -> None:
    """Refuse keys outside ``allowed``, naming only those that look like field names (never a value)."""
    unknown = [key for key in body if key not in allowed]
    if unknown:
        named = sorted(str(key) for key in unknown if isinstance(key, str) and _FIELD_NAME_RE.match(key))
        what = (
            f"unknown field(s) {named}" if len(named) == len(unknown) else f"{len(unknown)} unknown field(s)"
        )
        raise InvalidRequest(f"{where} has {what}; allowed: {sorted(allowed)}")


def _parse_history(raw: Any, limit: int, id_chars: int) -> tuple[HistoryEvent, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest(f"history must be a list, got {_kind(raw)}")
    if len(raw) > limit:
        raise InvalidRequest(f"history has {len(raw)} events; at most {limit} are accepted")
    events = []
    for i, entry in enumerate(raw):
        where = f"history[{i}]"
        if isinstance(entry, Mapping):
            check_fields(entry, ("event", "item_id"), where)
            if "item_id" not in entry:
                raise InvalidRequest(f"{where}.item_id is required")
            event = entry.get("event", "view")
            if not isinstance(event, str) or event not in EVENT_TYPES or event == "search":
                raise InvalidRequest(
                    f"{where}.event must be one of {[e for e in EVENT_TYPES if e != 'search']}"
                )
            events.append(HistoryEvent(item_id(entry["item_id"], f"{where}.item_id", id_chars), event))
        else:
            events.append(HistoryEvent(item_id(entry, where, id_chars)))
    return tuple(events)


def _parse_candidates(raw: Any, limit: int, id_chars: int) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidRequest(f"candidates must be a list of item ids, got {_kind(raw)}")
    if not raw:
        raise InvalidRequest("candidates must not be empty (leave it out to rank the whole catalogue)")
    if len(raw) > limit:
        raise InvalidRequest(f"candidates has {len(raw)} items; at most {limit} are accepted")
    return tuple(item_id(value, f"candidates[{i}]", id_chars) for i, value in enumerate(raw))


def _parse_context(raw: Any, limit: int) -> RequestContext:
    if raw is None:
        return RequestContext()
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"context must be an object, got {_kind(raw)}")
    check_fields(raw, _CONTEXT_FIELDS, "context")
    values = {}
    for key in _CONTEXT_FIELDS:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise InvalidRequest(f"context.{key} must be a string of at most {limit} characters")
        values[key] = None if value is None else text(value, f"context.{key}")
    return RequestContext(**values)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
