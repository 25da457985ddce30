"""The embedded predictor's gRPC servicer with the REST guard's rules (issue 11, finding 1).

KServe's ``InferenceServicer`` serves ``RepositoryModelLoad`` / ``RepositoryModelUnload`` to anyone, and its
``ServerReady`` is always true. Here the repository calls need ``serving.http.repository_api`` and the bearer
token in the ``authorization`` metadata (``PERMISSION_DENIED`` / ``UNAUTHENTICATED`` otherwise), and
``ServerReady`` is false while a model this server started with is not ready or was unloaded.

``ModelInfer`` with raw tensor bytes goes straight to a model that offers ``infer_raw`` (the embedded
predictor, ``serving/predictor.py``), skipping KServe's data plane and its request/response conversions, the
larger part of the predictor's CPU per request (issue 11); other requests take KServe's path. On both a
``model_version`` other than the served one is ``NOT_FOUND``, as on REST (KServe ignores it on gRPC).
"""

from __future__ import annotations

import hmac
from typing import Any

from grpc import StatusCode
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.servicer import InferenceServicer

from hyperrec.online.settings import HttpGuardConfig

from .http_guard import env_token


class GuardedServicer(InferenceServicer):
    """``InferenceServicer`` with guarded repository calls and a truthful ``ServerReady``."""

    def __init__(self, data_plane: Any, model_repository_extension: Any, http: HttpGuardConfig) -> None:
        super().__init__(data_plane, model_repository_extension)
        self.repository = model_repository_extension
        self.http = http
        self.registry = data_plane.model_registry
        self.expected = list(self.registry.get_models())

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:  # noqa: N802
        models = [self.registry.get_model(name) for name in self.expected]
        return pb.ServerReadyResponse(ready=all(m is not None and m.ready for m in models))

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:  # noqa: N802
        model = self.registry.get_model(request.model_name)
        served = getattr(model, "served_version", None)
        if request.model_version and served is not None and request.model_version != served:
            await context.abort(StatusCode.NOT_FOUND,
                                f"model_version is not served: this model serves version {served}")
        infer_raw = getattr(model, "infer_raw", None)
        if infer_raw is None or not request.raw_input_contents:
            return await super().ModelInfer(request, context)
        return await infer_raw(request)

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        await self._authorize(context)
        await self.repository.load(request.model_name)
        return pb.RepositoryModelLoadResponse(model_name=request.model_name, isLoaded=True)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        await self._authorize(context)
        await self.repository.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse(model_name=request.model_name, isUnloaded=True)

    async def _authorize(self, context: Any) -> None:
        if not self.http.repository_api:
            await context.abort(StatusCode.PERMISSION_DENIED,
                                "the model repository API is off (serving.http.repository_api)")
        token = env_token(self.http.repository_token_env)
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, value = given.partition(" ")
        if (
            token is None
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(value.strip().encode(), token)
        ):
            await context.abort(StatusCode.UNAUTHENTICATED, "the model repository API needs a bearer token")
