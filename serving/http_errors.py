"""Error answers of the REST servers (issue 11, finding 9): a 4xx is one WARNING line, never a traceback, and
neither the answer nor the line echoes the client's values.

KServe's own handlers log every error with its traceback and answer ``str(exc)``, which for a missing model
repeats the client's model name; FastAPI's 422 repeats the offending input. These replace them: messages
name the field and the rule, are capped at ``serving.http.max_error_chars``, and the route is logged as its
template (``/v1/models/{model_name}:predict``), not the path the client typed. Only a 5xx logs a traceback,
and its answer says nothing but "internal error".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI, served: Callable[[], list[str]], max_chars: int) -> None:
    """Register the handlers on ``app``; ``served`` lists the model names (for the 404 message)."""

    def answer(request: Request, status: int, message: str,
               headers: Mapping[str, str] | None = None) -> JSONResponse:
        message = message if len(message) <= max_chars else message[: max_chars - 1] + "…"
        logger.warning("%s %s → %d: %s", request.method, _route(request), status, message)
        return JSONResponse(status_code=status, content={"error": message}, headers=headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 400, str(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 404, f"no such model on this server; it serves {sorted(served())}")

    async def not_ready(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 503, "the model is not ready (still loading, or unloaded)")

    async def server_not_ready(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 503, "the server is not ready")

    async def not_implemented(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, 501, str(exc))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code >= 500:
            return await internal(request, exc)
        return answer(request, exc.status_code, str(exc.detail), exc.headers)

    async def unprocessable(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in exc.errors()[:5])
        return answer(request, 422, f"the request does not match the V2 schema ({problems})")

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s → 500", request.method, _route(request), exc_info=exc)
        return JSONResponse(status_code=500, content={"error": "internal error"})

    handlers = {InvalidInput: invalid, ModelNotFound: not_found, ModelNotReady: not_ready,
                ServerNotReady: server_not_ready, ServerNotLive: server_not_ready,
                NotImplementedError: not_implemented, UnsupportedProtocol: not_implemented,
                HTTPException: http_error, RequestValidationError: unprocessable,
                InferenceError: internal, Exception: internal}
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "(no route)"))
