"""Assembling servers: models for each role, the REST app as KServe builds it, and a ModelServer that can bind
a chosen address and serve models that are still loading (503 until ready).

``python -m hyperrec.serving {predictor,transformer}`` is a thin wrapper over ``build_models`` and
``HyperrecModelServer``; tests build the same REST app in-process with ``create_rest_app``.

Predictor pairing. The transformer and the predictor load their own copy of a bundle (a cluster delivers the
bundle root to the transformer and its ``triton/`` to Triton), so nothing forces the two to be the same bundle:
during a rollout or a canary, KServe routes each transformer → predictor call to either predictor revision. The
predictor's scores are only meaningful over the catalogue they were trained for, so ``PairedScorer`` reads the
predictor's V2 model metadata (``GET /v2/models/<name>`` or gRPC ``ModelMetadata``) at load and then periodically,
and while the ``scores`` output's item axis differs from the transformer's catalogue size it refuses the
predictor's scores: answers degrade to popularity (``degraded: true``), ``hyperrec_errors_total{kind=
"predictor_mismatch"}`` counts them and ``hyperrec_predictor_mismatch`` is 1. Triton's model version is always
``1`` (the bundle's repository layout), so the item count is what the metadata can tell; each response's shape is
checked again by ``TritonV2Client``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from kserve import Model, ModelServer
from kserve.predictor_config import PredictorConfig
from kserve.protocol.rest.server import RESTServer
from prometheus_client import Gauge

from hyperrec.online.errors import PredictorUnavailable
from hyperrec.online.settings import ServingConfig

from .metrics import ERRORS
from .predictor import OnnxRankerModel
from .transformer import FeedbackModel, RecommendTransformer, ScorerFactory
from .v2_client import ScoresClient, TritonV2Client

logger = logging.getLogger(__name__)

ROLES = ("predictor", "transformer")


def pseudonymizer_from_config(config_path: Path | None, overrides: Sequence[str] = ()) -> Callable[[str], str]:
    """``Pseudonymizer.from_config(cfg.privacy).pseudonymize`` of the hyperrec config (key never logged)."""
    from hyperrec.config import load_config
    from hyperrec.data.pseudonymize import Pseudonymizer

    cfg = load_config(config_path, overrides=list(overrides))
    return Pseudonymizer.from_config(cfg.privacy).pseudonymize


def serving_config(config_path: Path | None, overrides: Sequence[str] = ()) -> ServingConfig:
    """The ``serving`` section of the hyperrec config (defaults until the section is mounted)."""
    from hyperrec.config import load_config

    return load_config(config_path, overrides=list(overrides)).serving


def predictor_config_for(settings: ServingConfig) -> PredictorConfig:
    """KServe's view of the transformer → predictor link (our client reads the same settings)."""
    return PredictorConfig(
        predictor_host=settings.predictor_url,
        predictor_protocol="grpc-v2" if settings.predictor_protocol == "grpc" else "v2",
        predictor_request_timeout_seconds=max(1, round(settings.request_timeout_s)),
        predictor_request_retries=settings.retries,
        predictor_health_check=False,  # a down predictor degrades answers; the transformer stays ready
    )


def build_models(
    role: str,
    bundle_dir: Path,
    settings: ServingConfig,
    *,
    model_name: str | None = None,
    pseudonymize: Callable[[str], str] | None = None,
    scorer_factory: ScorerFactory | None = None,
) -> list[Model]:
    """The (not yet loaded) models of one role; the model name defaults to the bundle's."""
    from hyperrec.export.bundle import read_manifest

    name = model_name or str(read_manifest(bundle_dir)["model_name"])
    if role == "predictor":
        return [OnnxRankerModel(name, bundle_dir)]
    if role == "transformer":
        if pseudonymize is None:
            raise ValueError("the transformer needs a pseudonymize callable")
        factory = scorer_factory or paired_scorer_factory(settings, transformer_name=name)
        return [
            RecommendTransformer(name, bundle_dir, settings, pseudonymize=pseudonymize, scorer_factory=factory),
            FeedbackModel(settings, pseudonymize=pseudonymize),
        ]
    raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")


# --------------------------------------------------------------------------------------------- predictor pairing

PREDICTOR_MISMATCH = Gauge(
    "hyperrec_predictor_mismatch",
    "1 while the predictor's model metadata contradicts the transformer's catalogue (its scores are refused and "
    "answers degrade); 0 when they agree or could not be checked.",
    ["model"],
)
#: Deadline of one model-metadata call (at load it delays readiness by at most this much).
METADATA_TIMEOUT_S = 2.0
#: Seconds between two checks while the predictor fits; after a mismatch, a failed check or a failed call.
RECHECK_S, RECHECK_SOON_S = 30.0, 5.0

SCORES_OUTPUT = "scores"


@dataclass(frozen=True)
class Pairing:
    """What the predictor's model metadata says about it serving this transformer's catalogue."""

    state: Literal["paired", "mismatch", "unknown"]
    detail: str


def check_pairing(metadata: Mapping[str, Any], *, n_items: int, model_name: str) -> Pairing:
    """Compare V2 model metadata (the REST JSON or the gRPC message as a dict) with a catalogue of ``n_items``.

    ``mismatch`` only on a positive contradiction: outputs without ``scores``, or a ``scores`` item axis (its last
    dimension) other than ``n_items``. Metadata that cannot tell (no outputs yet, a dynamic item axis) is
    ``unknown``: scores are then used and checked per response.
    """
    outputs = list(metadata.get("outputs") or [])
    if not outputs:
        return Pairing("unknown", f"the predictor lists no outputs for model {model_name!r} (still loading?)")
    scores = next((o for o in outputs if o.get("name") == SCORES_OUTPUT), None)
    if scores is None:
        names = sorted(str(o.get("name")) for o in outputs)
        return Pairing("mismatch", f"the predictor's model {model_name!r} has outputs {names}, no {SCORES_OUTPUT!r}")
    try:
        shape = [int(d) for d in scores.get("shape") or []]
    except (TypeError, ValueError):
        return Pairing("unknown", f"unreadable {SCORES_OUTPUT!r} shape {scores.get('shape')!r}")
    if not shape or shape[-1] < 0:
        return Pairing("unknown", f"{SCORES_OUTPUT!r} has shape {shape}: no fixed item axis to compare")
    if shape[-1] != n_items:
        return Pairing(
            "mismatch",
            f"the predictor's model {model_name!r} scores {shape[-1]} items (shape {shape}); this transformer's "
            f"catalogue has {n_items}: they come from different bundles",
        )
    return Pairing("paired", f"{SCORES_OUTPUT!r} shape {shape} fits {n_items} items")


def fetch_model_metadata(settings: ServingConfig, model_name: str, timeout_s: float = METADATA_TIMEOUT_S
                         ) -> dict[str, Any]:
    """The predictor's V2 model metadata over ``settings.predictor_protocol`` (blocking; raises on any failure).

    gRPC uses KServe's V2 stubs (``inference.GRPCInferenceService/ModelMetadata``, what Triton implements); HTTP
    is ``GET /v2/models/<name>[/versions/<v>]``.
    """
    version = settings.predictor_model_version
    if settings.predictor_protocol == "grpc":
        import grpc
        from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
        from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

        with grpc.insecure_channel(settings.predictor_url) as channel:
            response = GRPCInferenceServiceStub(channel).ModelMetadata(
                pb.ModelMetadataRequest(name=model_name, version=version), timeout=timeout_s
            )
        return {
            "name": response.name,
            "versions": list(response.versions),
            "platform": response.platform,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.outputs],
        }
    import httpx

    path = f"/v2/models/{model_name}" + (f"/versions/{version}" if version else "")
    response = httpx.get(f"http://{settings.predictor_url}{path}", timeout=timeout_s)
    response.raise_for_status()
    return dict(response.json())


class PairedScorer:
    """A ``ScoresClient`` that passes the predictor's scores on only while its model fits this catalogue.

    ``check`` (blocking) asks the predictor for its model metadata; the transformer's load runs it once, and
    ``score`` re-runs it in a worker thread when due (every ``recheck_s`` while paired, every ``recheck_soon_s``
    otherwise or after a failed call), never waiting for it. While the state is ``mismatch`` every ``score``
    raises ``PredictorUnavailable`` (the transformer answers degraded) and counts
    ``hyperrec_errors_total{kind="predictor_mismatch"}``.
    """

    def __init__(
        self,
        inner: ScoresClient,
        *,
        transformer_name: str,
        model_name: str,
        n_items: int,
        fetch_metadata: Callable[[], Mapping[str, Any]],
        recheck_s: float = RECHECK_S,
        recheck_soon_s: float = RECHECK_SOON_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.transformer_name = transformer_name
        self.model_name = model_name
        self.n_items = n_items
        self._fetch = fetch_metadata
        self.recheck_s = recheck_s
        self.recheck_soon_s = recheck_soon_s
        self._clock = clock
        self.pairing = Pairing("unknown", "not checked yet")
        self._checked_at: float | None = None
        self._suspect = False
        self._refresh: asyncio.Future[Pairing] | None = None
        PREDICTOR_MISMATCH.labels(model=transformer_name).set(0)

    def check(self) -> Pairing:
        """Ask the predictor now (blocking, bounded by the fetch's timeout) and record the answer."""
        try:
            metadata = self._fetch()
        except Exception as exc:  # noqa: BLE001 - unreachable, not loaded yet, unknown model: cannot tell
            pairing = Pairing("unknown", f"no model metadata from the predictor ({_describe(exc)})")
        else:
            pairing = check_pairing(metadata, n_items=self.n_items, model_name=self.model_name)
        self._record(pairing)
        return pairing

    def due(self) -> bool:
        """Whether the next ``score`` should start a check."""
        if self._checked_at is None:
            return True
        soon = self._suspect or self.pairing.state != "paired"
        return self._clock() - self._checked_at >= (self.recheck_soon_s if soon else self.recheck_s)

    async def score(self, inputs: dict[str, np.ndarray], request_id: str) -> np.ndarray:
        self._maybe_recheck()
        if self.pairing.state == "mismatch":
            ERRORS.labels(model=self.transformer_name, kind="predictor_mismatch").inc()
            raise PredictorUnavailable(f"predictor scores refused: {self.pairing.detail}")
        try:
            return await self.inner.score(inputs, request_id)
        except PredictorUnavailable:
            self._suspect = True  # a rollout may have swapped the predictor's model: look again soon
            raise

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
        await self.inner.close()

    def _maybe_recheck(self) -> None:
        if (self._refresh is None or self._refresh.done()) and self.due():
            self._refresh = asyncio.ensure_future(asyncio.to_thread(self.check))

    def _record(self, pairing: Pairing) -> None:
        previous, first = self.pairing, self._checked_at is None
        self.pairing, self._checked_at, self._suspect = pairing, self._clock(), False
        PREDICTOR_MISMATCH.labels(model=self.transformer_name).set(1 if pairing.state == "mismatch" else 0)
        if not first and pairing.state == previous.state:
            return
        if pairing.state == "mismatch":
            logger.error("transformer %s refuses the predictor's scores until it serves this catalogue "
                         "(answers are degraded meanwhile): %s", self.transformer_name, pairing.detail)
        elif pairing.state == "paired":
            logger.info("transformer %s: the predictor's model fits the catalogue (%s)", self.transformer_name,
                        pairing.detail)
        else:
            logger.warning("transformer %s cannot check the predictor's model yet (%s); responses are checked "
                           "one by one meanwhile", self.transformer_name, pairing.detail)


def _describe(exc: BaseException) -> str:
    """One line about a failed metadata call (gRPC errors: status and details, not their multi-line repr)."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):
        try:
            return f"{getattr(code(), 'name', code())}: {details()}"
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def paired_scorer_factory(
    settings: ServingConfig,
    *,
    transformer_name: str,
    fetch_metadata: Callable[[str], Mapping[str, Any]] | None = None,
) -> ScorerFactory:
    """The transformer's default scorer: ``TritonV2Client`` behind a ``PairedScorer``, checked once at load.

    ``fetch_metadata(model_name)`` defaults to ``fetch_model_metadata`` with ``settings``.
    """

    def build(manifest: dict[str, Any]) -> ScoresClient:
        model_name, n_items = str(manifest["model_name"]), int(manifest["n_items"])
        fetch = fetch_metadata or (lambda name: fetch_model_metadata(settings, name))
        scorer = PairedScorer(
            TritonV2Client(settings, model_name, n_items), transformer_name=transformer_name, model_name=model_name,
            n_items=n_items, fetch_metadata=lambda: fetch(model_name),
        )
        scorer.check()  # at load: logs and sets the gauge; an unreachable predictor never fails the load
        return scorer

    return build


def create_rest_app(server: ModelServer) -> FastAPI:
    """A fresh FastAPI app with KServe's routes, middleware and error handlers for ``server``'s models.

    KServe's own ``RESTServer.create_application`` decorates one module-level app; building a new one per
    server lets tests run several servers in one process and lets ``HyperrecModelServer`` bind any host.
    """
    app = FastAPI(title="hyperrec serving", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse)
    rest = RESTServer(app, server.dataplane, server.model_repository_extension, http_port=server.http_port)
    rest._add_middlewares(app)
    rest._register_endpoints(app)
    rest._add_exception_handlers(app)
    return app


class HyperrecModelServer(ModelServer):
    """ModelServer that binds ``bind_host`` and registers models before they are ready (they answer 503).

    Multi-worker REST (``--workers > 1``) falls back to KServe's own start, which binds 0.0.0.0 and needs
    every model loaded first.
    """

    def __init__(self, *args: Any, bind_host: str = "0.0.0.0", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bind_host = bind_host
        self._uvicorn: Any = None
        self._grpc: Any = None

    def start(self, models: list[Model]) -> None:  # type: ignore[override]
        for model in models:
            self.register_model(model)
            model.enable_latency_logging = False  # per-request INFO lines would only repeat the metrics
        if self.workers > 1:
            super().start([m for m in models if m.ready])
            return
        asyncio.run(self._serve_all())

    async def _serve_all(self) -> None:
        import uvicorn

        self.setup_event_loop()
        config = uvicorn.Config(
            create_rest_app(self), host=self.bind_host, port=self.http_port, log_config=None,
            timeout_keep_alive=self.timeout_keep_alive, loop="asyncio",
        )
        self._uvicorn = uvicorn.Server(config)
        tasks = [asyncio.create_task(self._uvicorn.serve())]
        if self.enable_grpc:
            tasks.append(asyncio.create_task(self._serve_grpc()))
        loop = asyncio.get_running_loop()

        def on_signal(sig: int, frame: Any) -> None:
            # uvicorn captures SIGINT/SIGTERM while it serves and re-raises them here when it has stopped.
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._shutdown()))

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        logger.info("serving %s on http://%s:%d%s", ", ".join(self.registered_models.get_models()),
                    self.bind_host, self.http_port,
                    f" and grpc {self.bind_host}:{self.grpc_port}" if self.enable_grpc else "")
        try:
            await asyncio.gather(*tasks)
        finally:
            for model in self.registered_models.get_models().values():
                close = getattr(model, "close", None)
                if close is not None:
                    await close()
                model.stop()

    async def _serve_grpc(self) -> None:
        from grpc import aio
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
        from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
        from kserve.protocol.grpc.servicer import InferenceServicer

        self._grpc = aio.server(
            futures.ThreadPoolExecutor(max_workers=self.max_threads),
            interceptors=(ExceptionToStatusInterceptor(),),
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self.dataplane, self.model_repository_extension), self._grpc
        )
        self._grpc.add_insecure_port(f"{self.bind_host}:{self.grpc_port}")
        await self._grpc.start()
        await self._grpc.wait_for_termination()

    async def _shutdown(self) -> None:
        logger.info("stopping the model server")
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace=min(self.grace_period, 5))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_on_load_failure(_: BaseException) -> None:
    """A bundle that cannot load will never serve: stop the process so the orchestrator sees it."""
    os.kill(os.getpid(), signal.SIGTERM)
