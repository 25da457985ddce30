"""The REST app of a hyperrec model server, assembled from KServe's public pieces (issue 11, findings 1 and
10; issue 13: no private ``RESTServer`` methods).

KServe's ``RESTServer`` builds its app with private methods on one module-level app; this module builds a
fresh app per server from the public functions those methods call (``register_v1_endpoints``,
``register_v2_endpoints``, ``metrics_handler``, ``DataPlane.live``), and puts hyperrec's own routes first,
where they replace KServe's for the same path and method:

- readiness that tells the truth (``/v2/health/ready``, ``/v2/models/<m>/ready``, ``/v1/models/<m>``): a
  model that is loading, failed or was unloaded is not ready, and a transformer whose predictor does not
  answer its readiness probe is not ready either (``serving.http.ready_requires_predictor``), though it
  still answers, degraded;
- V2 ``model_version``: the served version answers, any other is a 404 naming the served one (KServe: 501);
- the error handlers of ``http_errors`` and the ``RequestGuard`` middleware of ``http_guard``.

KServe's ``TimingMiddleware`` (per-request timing lines on its trace logger) is left out: the Prometheus
histograms of ``serving/metrics.py`` measure the same stages.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, ORJSONResponse
from fastapi.routing import APIRouter
from kserve import ModelServer
from kserve.errors import ModelNotFound
from kserve.protocol.rest.server import metrics_handler
from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from kserve.protocol.rest.v2_endpoints import V2Endpoints, register_v2_endpoints

from hyperrec.online.settings import HttpGuardConfig

from .feedback_model import FeedbackModel
from .http_errors import install_error_handlers
from .http_guard import RequestGuard, check_guard_config
from .recommend_route import fast_predict_router
from .transformer import RecommendTransformer


class Probes:
    """The state of each model this server started with; a model missing from the registry was unloaded."""

    def __init__(self, server: ModelServer, http: HttpGuardConfig) -> None:
        self.registry = server.dataplane.model_registry
        self.expected = list(self.registry.get_models())
        self.http = http

    async def state(self, name: str) -> str:
        """``ready``, ``loading``, ``failed``, ``unloaded`` or ``predictor_unavailable``."""
        model = self.registry.get_model(name)
        if model is None:
            return "unloaded"
        if not model.ready:
            return "failed" if getattr(model, "load_error", None) else "loading"
        probe = getattr(model, "predictor_ready", None)
        if probe is not None and self.http.ready_requires_predictor:
            try:
                if not await asyncio.wait_for(probe(), self.http.predictor_probe_timeout_s):
                    return "predictor_unavailable"
            except Exception:  # noqa: BLE001 - a probe that fails or times out means "not ready"
                return "predictor_unavailable"
        return "ready"

    async def states(self) -> dict[str, str]:
        names = list(dict.fromkeys([*self.expected, *self.registry.get_models()]))
        return dict(zip(names, await asyncio.gather(*(self.state(n) for n in names)), strict=True))

    async def server_ready(self) -> Response:
        states = await self.states()
        if all(state == "ready" for state in states.values()):
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "models": states}, status_code=503)

    async def model_ready(self, model_name: str) -> Response:
        self._known(model_name)
        state = await self.state(model_name)
        if state == "ready":
            return JSONResponse({"name": model_name, "ready": True})
        return JSONResponse({"error": f"the model is not ready: {state}", "ready": False}, status_code=503)

    def _known(self, name: str) -> None:
        if name not in self.expected and self.registry.get_model(name) is None:
            raise ModelNotFound(name)


class Versions:
    """V2 routes with ``/versions/<v>``: the served version is the one in the model's bundle."""

    def __init__(self, server: ModelServer, probes: Probes) -> None:
        self.registry = server.dataplane.model_registry
        self.v2 = V2Endpoints(server.dataplane, server.model_repository_extension)
        self.probes = probes

    def check(self, model_name: str, model_version: str) -> JSONResponse | None:
        """None when ``model_version`` is served; else the 404 to answer."""
        model = self.registry.get_model(model_name)
        if model is None:
            raise ModelNotFound(model_name)
        served = getattr(model, "served_version", None)
        if served is not None and model_version == served:
            return None
        what = f"serves version {served!r}" if served is not None else "is not versioned"
        return JSONResponse({"error": f"model_version is not served: this model {what}"}, status_code=404)

    async def infer(self, raw_request: Request, raw_response: Response, model_name: str, model_version: str,
                    request_body: InferenceRequest | bytes) -> Any:
        refused = self.check(model_name, model_version)
        if refused is not None:
            return refused
        return await self.v2.infer(raw_request, raw_response, model_name, request_body)

    async def ready(self, model_name: str, model_version: str) -> Response:
        return self.check(model_name, model_version) or await self.probes.model_ready(model_name)

    async def metadata(self, model_name: str, model_version: str) -> Any:
        return self.check(model_name, model_version) or await self.v2.model_metadata(model_name)


def build_rest_app(server: ModelServer, http: HttpGuardConfig) -> FastAPI:
    """A fresh app with KServe's V1/V2 routes behind hyperrec's readiness, versions, errors and guard."""
    check_guard_config(http)
    app = FastAPI(
        title="hyperrec serving", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse
    )
    probes = Probes(server, http)
    versions = Versions(server, probes)
    router = APIRouter()
    router.add_api_route("/", server.dataplane.live)
    router.add_api_route("/metrics", metrics_handler, methods=["GET"])
    router.add_api_route("/v2/health/ready", probes.server_ready, methods=["GET"])
    router.add_api_route("/v2/models/{model_name}/ready", probes.model_ready, methods=["GET"])
    router.add_api_route("/v1/models/{model_name}", probes.model_ready, methods=["GET"])
    router.add_api_route(
        "/v2/models/{model_name}/versions/{model_version}/ready", versions.ready, methods=["GET"]
    )
    router.add_api_route(
        "/v2/models/{model_name}/versions/{model_version}", versions.metadata, methods=["GET"]
    )
    router.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", versions.infer,
                         methods=["POST"], response_model=None)
    app.include_router(
        fast_predict_router(
            server,
            [
                name
                for name, model in server.registered_models.get_models().items()
                if isinstance(model, RecommendTransformer)
            ],
        )
    )
    app.include_router(router)
    register_v1_endpoints(app, server.dataplane, server.model_repository_extension)
    register_v2_endpoints(app, server.dataplane, server.model_repository_extension)
    install_error_handlers(app, lambda: list(probes.registry.get_models()), http.max_error_chars)
    feedback = [f"/v1/models/{name}:{verb}" for name, model in probes.registry.get_models().items()
                if isinstance(model, FeedbackModel) for verb in ("predict", "explain")]
    app.add_middleware(RequestGuard, http=http, feedback_paths=feedback)
    for model in server.registered_models.get_models().values():
        add_routes = getattr(model, "add_routes", None)
        if add_routes is not None:
            add_routes(app)
    return app
