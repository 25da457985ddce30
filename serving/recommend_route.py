"""The recommend model's ``:predict`` route without FastAPI's per-request machinery (issue 11).

KServe registers ``POST /v1/models/{model_name}:predict`` as a FastAPI route: every request walks the app's
route list several times, solves the endpoint's dependencies and builds a deprecated ``ORJSONResponse``
around the model's work. This route, matched first, cut the transformer's in-process CPU per request from
0.55 to 0.38 ms (9,742 items, the ASGI app called directly with a precomputed top k).
``fast_predict_router`` puts a plain Starlette route for each recommend model's exact path in front of
KServe's, doing what KServe's ``V1Endpoints.predict`` does and nothing else: the readiness check, KServe's own
body decoding (``DataPlane.decode``), the model's ``__call__`` (so KServe's stage histograms stay), the answer
as orjson with the model's response headers. The app's middleware (the request guard) and error handlers apply
to it as to every route; other models (feedback) and verbs keep KServe's routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from fastapi.routing import APIRouter
from kserve import Model, ModelServer
from kserve.errors import ModelNotFound, ModelNotReady
from starlette.requests import Request
from starlette.responses import Response

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY  # what ORJSONResponse renders with


@dataclass(frozen=True)
class RoutePath:
    """The ``scope["route"]`` of a request this module answers: the error handlers log its ``path``."""

    path: str


def fast_predict_router(server: ModelServer, names: list[str]) -> APIRouter:
    """A router of ``POST /v1/models/<name>:predict`` straight to the model, for each of ``names``: included
    first, it is the first the app matches a request against."""
    router = APIRouter()
    for name in names:
        router.add_route(f"/v1/models/{name}:predict", predict_endpoint(server, name), methods=["POST"])
    return router


def predict_endpoint(server: ModelServer, name: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of one model's ``:predict``: KServe's V1 predict for a JSON answer, minus the
    framework."""
    dataplane = server.dataplane
    route = RoutePath(f"/v1/models/{name}:predict")

    async def predict(request: Request) -> Response:
        request.scope["route"] = route
        model = dataplane.model_registry.get_model(name)
        if not isinstance(model, Model):
            raise ModelNotFound(name)  # unloaded since start
        if not model.ready:
            raise ModelNotReady(name)
        headers = dict(request.headers.items())
        payload, _ = dataplane.decode(body=await request.body(), headers=headers)
        answer, response_headers = await model(payload, headers=headers)
        response_headers.pop("content-length", None)
        return Response(orjson.dumps(answer, option=_JSON_OPTIONS), media_type="application/json",
                        headers=response_headers)

    return predict
