"""The first thing a request meets: an ASGI middleware that refuses, before any parsing, what the servers must
not take (issue 11, findings 1, 3, 5 and the feedback token).

- **Body size**: a body past ``serving.http.max_body_bytes`` is a 413, decided from ``content-length`` or,
  without one, while the chunks are read; the rest of the body is never read and the app never sees it.
- **Content type**: ``application/json`` with no parameter or ``charset=utf-8`` (any case), or none at all
  (KServe's own clients send none); the header is then normalised to exactly ``application/json`` so KServe's
  data plane decodes it with orjson (depth-limited, surrogate-safe) instead of passing raw bytes on. V2 binary
  tensors (``application/octet-stream`` with ``inference-header-content-length``) go to the V2 infer routes.
  Everything else is a 415, CloudEvents (structured ``application/cloudevents+json`` or binary ``ce-*``
  headers) included: hyperrec's endpoints speak plain JSON.
- **Model repository** (``/v2/repository/...``): 403 unless ``serving.http.repository_api``; then a bearer
  token (``repository_token_env``) is required (401 without it).
- **Feedback**: with a token in ``feedback_token_env`` the feedback routes need ``Authorization: Bearer``.

Tokens are compared in constant time (``hmac.compare_digest``). Every refusal is one log line with the rule,
never the client's values.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

from hyperrec.online.settings import HttpGuardConfig

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REPOSITORY_PREFIX = "/v2/repository/"
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class Refused(Exception):
    """A request the guard answers itself: ``status`` and a message that names the rule."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


def env_token(name: str) -> bytes | None:
    """The bearer token held by environment variable ``name``; None when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value.encode("utf-8") if value else None


def bearer_matches(headers: dict[bytes, bytes], token: bytes) -> bool:
    """Whether ``Authorization: Bearer <token>`` was sent (constant-time comparison)."""
    scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)


def check_guard_config(http: HttpGuardConfig) -> None:
    """Refuse to start with the repository API on and no token to protect it (raises ValueError)."""
    if http.repository_api and env_token(http.repository_token_env) is None:
        raise ValueError(f"serving.http.repository_api is on but {http.repository_token_env} holds no token: "
                         "the model repository API must not be open to anyone who reaches the port")


class RequestGuard:
    """ASGI middleware applying ``serving.http`` to every HTTP request (see the module doc).

    ``feedback_paths``: paths of the feedback model's routes (the token applies to them only).
    """

    def __init__(self, app: ASGIApp, http: HttpGuardConfig, *, feedback_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.http = http
        self.feedback_paths = frozenset(feedback_paths)
        check_guard_config(http)
        self.repository_token = env_token(http.repository_token_env) if http.repository_api else None
        self.feedback_token = env_token(http.feedback_token_env)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            headers = dict(scope.get("headers") or [])
            self._authorize(scope["path"], headers)
            if scope["method"] in _BODY_METHODS:
                self._negotiate(scope, headers)
                buffered = await self._buffered(headers, receive)
                if buffered is None:
                    return  # the client went away mid-body: nobody to answer
                receive = buffered
        except Refused as refused:
            logger.warning(
                "%s %s refused (%d): %s", scope["method"], _route_of(scope["path"]), refused.status, refused
            )
            await _answer(send, refused)
            return
        await self.app(scope, receive, send)

    def _authorize(self, path: str, headers: dict[bytes, bytes]) -> None:
        if path.startswith(REPOSITORY_PREFIX):
            if not self.http.repository_api:
                raise Refused(403, "the model repository API is off (serving.http.repository_api)")
            assert self.repository_token is not None
            if not bearer_matches(headers, self.repository_token):
                raise Refused(401, "the model repository API needs 'Authorization: Bearer <token>'",
                              [(b"www-authenticate", b"Bearer")])
        elif self.feedback_token is not None and path in self.feedback_paths:
            if not bearer_matches(headers, self.feedback_token):
                raise Refused(
                    401, "feedback needs 'Authorization: Bearer <token>'", [(b"www-authenticate", b"Bearer")]
                )

    def _negotiate(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        """Accept JSON in UTF-8 (and V2 binary tensors on infer routes); normalise the header for KServe."""
        if any(name.startswith(b"ce-") for name in headers):
            raise Refused(415, "CloudEvents are not accepted: send the request as plain application/json")
        raw = headers.get(b"content-type")
        if raw is None:
            return
        media, _, params = raw.decode("latin-1").partition(";")
        media = media.strip().lower()
        if media == "application/octet-stream" and b"inference-header-content-length" in headers \
                and scope["path"].endswith("/infer"):
            return
        if media != "application/json" or not _utf8_params(params):
            raise Refused(415, "content-type must be application/json (charset utf-8 if given)")
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + [
            (b"content-type", b"application/json")]

    async def _buffered(self, headers: dict[bytes, bytes], receive: Receive) -> Receive | None:
        """Read the body up to the limit (413 past it, without reading on) and replay it to the app."""
        limit = self.http.max_body_bytes
        too_large = Refused(413, f"request body is larger than {limit} bytes (serving.http.max_body_bytes)")
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise too_large if declared.isdigit() else Refused(400, "content-length is not a number")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        return _replay(b"".join(chunks), receive)


def _utf8_params(params: str) -> bool:
    for param in filter(None, (p.strip() for p in params.split(";"))):
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the real channel (a disconnect, when it comes)

    return replay


def _route_of(path: str) -> str:
    """The path without its model name (a client value): ``/v1/models/{name}:predict``."""
    parts = path.split("/")
    if len(parts) > 3 and parts[2] == "models":
        name, sep, verb = parts[3].partition(":")
        parts[3] = "{name}" + sep + verb
    if len(parts) > 4 and parts[3] == "models" and parts[1:3] == ["v2", "repository"]:
        parts[4] = "{name}"
    return "/".join(parts)[:120]


async def _answer(send: Send, refused: Refused) -> None:
    body = orjson.dumps({"error": str(refused)})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *refused.headers]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
