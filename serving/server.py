"""Assembling servers: models for each role, the REST app as KServe builds it, and a ModelServer that can bind
a chosen address and serve models that are still loading (503 until ready).

``python -m hyperrec.serving {predictor,transformer}`` is a thin wrapper over ``build_models`` and
``HyperrecModelServer``; tests build the same REST app in-process with ``create_rest_app``.

Predictor pairing (``PairedScorer``, the champion's and the challenger's): ``serving/pairing.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from kserve import Model, ModelServer
from kserve.predictor_config import PredictorConfig

from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.settings import HttpGuardConfig, ServingConfig

from .feedback_model import FeedbackModel, open_journal
from .pairing import (  # noqa: F401 - re-exported: the pairing API has always been importable from here
    METADATA_TIMEOUT_S,
    PREDICTOR_MISMATCH,
    PairedScorer,
    Pairing,
    check_pairing,
    fetch_model_metadata,
    paired_scorer_factory,
)
from .predictor import OnnxRankerModel
from .rest_app import build_rest_app
from .revisions import RevisionSpec
from .transformer import RecommendTransformer, ScorerFactory

if TYPE_CHECKING:  # pragma: no cover
    from hyperrec.online.bandits.reranker import BanditReranker
    from hyperrec.privacy.serving_guard import PrivacyGuard

logger = logging.getLogger(__name__)

ROLES = ("predictor", "transformer")


def pseudonymizer_from_config(
    config_path: Path | None, overrides: Sequence[str] = ()
) -> Callable[[str], str]:
    """``Pseudonymizer.from_config(cfg.privacy).pseudonymize`` of the hyperrec config (key never logged)."""
    from hyperrec.config import load_config
    from hyperrec.data.pseudonymize import Pseudonymizer

    cfg = load_config(config_path, overrides=list(overrides))
    return Pseudonymizer.from_config(cfg.privacy).pseudonymize


def privacy_guard(config_path: Path | None, overrides: Sequence[str], settings: ServingConfig,
                  bandit: BanditConfig | None, pseudonymize: Callable[[str], str]) -> PrivacyGuard:
    """The transformer's consent check and erasure endpoints (hyperrec.privacy.serving_guard)."""
    from hyperrec.config import load_config
    from hyperrec.privacy.serving_guard import PrivacyGuard

    return PrivacyGuard.from_config(
        load_config(config_path, overrides=list(overrides)),
        feedback_dir=settings.feedback_dir,
        bandit=bandit,
        pseudonymize=pseudonymize,
    )


def serving_config(config_path: Path | None, overrides: Sequence[str] = ()) -> ServingConfig:
    """The ``serving`` section of the hyperrec config (defaults until the section is mounted)."""
    from hyperrec.config import load_config

    return load_config(config_path, overrides=list(overrides)).serving


def bandit_config(config_path: Path | None, overrides: Sequence[str] = ()) -> BanditConfig:
    """The ``bandit`` section of the hyperrec config (the transformer's re-ranker)."""
    from hyperrec.config import load_config

    return load_config(config_path, overrides=list(overrides)).bandit


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
    challenger_scorer_factory: ScorerFactory | None = None,
    bandit: BanditConfig | None = None,
    privacy: PrivacyGuard | None = None,
) -> list[Model]:
    """The (not yet loaded) models of one role; the model name defaults to the bundle's.

    Transformer: the recommend model (the champion, and the challenger of ``serving.split`` when set) and the
    feedback model, sharing one served journal and, with ``bandit.enabled``, one bandit re-ranker.
    """
    from hyperrec.export.bundle import read_manifest

    name = model_name or str(read_manifest(bundle_dir)["model_name"])
    if role == "predictor":
        return [OnnxRankerModel(name, bundle_dir, settings=settings.predictor)]
    if role == "transformer":
        if pseudonymize is None:
            raise ValueError("the transformer needs a pseudonymize callable")
        reranker = open_reranker(bandit)
        journal = open_journal(settings, bandit=reranker)
        factory = scorer_factory or paired_scorer_factory(
            settings, transformer_name=name, revision=settings.revision
        )
        recommend = RecommendTransformer(
            name,
            bundle_dir,
            settings,
            pseudonymize=pseudonymize,
            scorer_factory=factory,
            challenger=challenger_spec(settings, name, challenger_scorer_factory),
            journal=journal,
            bandit=reranker,
            registered_version=settings.registered_version,
            privacy=privacy,
        )
        feedback = FeedbackModel(settings, pseudonymize=pseudonymize, journal=journal, bandit=reranker,
                                 known_item=recommend.knows_item)
        return [recommend, feedback]
    raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")


def challenger_spec(settings: ServingConfig, name: str, factory: ScorerFactory | None) -> RevisionSpec | None:
    """The challenger revision of an embedded split (``serving.split``), or None."""
    split = settings.split
    if split.challenger_bundle_dir is None:
        return None
    if split.challenger_predictor_url is None and factory is None:
        raise ValueError("serving.split.challenger_predictor_url is required with a challenger bundle")
    link = settings.model_copy(
        update={"predictor_url": split.challenger_predictor_url or settings.predictor_url}
    )
    factory = factory or paired_scorer_factory(
        link, transformer_name=name, revision=split.challenger_revision
    )
    return RevisionSpec(split.challenger_revision, Path(split.challenger_bundle_dir), factory, link,
                        split.challenger_registered_version)


def open_reranker(bandit: BanditConfig | None) -> BanditReranker | None:
    """The bandit re-ranker of ``bandit.enabled`` on its store (never raises for an unreachable store)."""
    if bandit is None or not bandit.enabled:
        return None
    from hyperrec.online.bandits.reranker import BanditReranker
    from hyperrec.online.bandits.state import StoreUnavailable
    from hyperrec.online.bandits.stores import open_store

    try:
        store = open_store(bandit)
    except StoreUnavailable as exc:
        raise ValueError(f"bandit.store_url {bandit.store_url}: {exc}") from None
    logger.info("bandit %s re-ranks the top %d candidates; state at %s", bandit.policy, bandit.top_n,
                bandit.store_url)
    return BanditReranker(bandit, store)


def create_rest_app(server: ModelServer, http: HttpGuardConfig | None = None) -> FastAPI:
    """A fresh FastAPI app with KServe's routes behind hyperrec's guard, readiness and error handlers.

    KServe's own ``RESTServer.create_application`` decorates one module-level app; building a new one per
    server lets tests run several servers in one process and lets ``HyperrecModelServer`` bind any host
    (``serving/rest_app.py`` builds it from KServe's public functions).
    """
    return build_rest_app(server, http or HttpGuardConfig())


class HyperrecModelServer(ModelServer):
    """ModelServer that binds ``bind_host`` and registers models before they are ready (they answer 503).

    Multi-worker REST (``--workers > 1``) is refused: KServe's own start would serve its module-level app,
    without hyperrec's request guard.
    """

    def __init__(self, *args: Any, bind_host: str = "0.0.0.0", http: HttpGuardConfig | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bind_host = bind_host
        self.http = http or HttpGuardConfig()
        self._uvicorn: Any = None
        self._grpc: Any = None

    def start(self, models: list[Model]) -> None:  # type: ignore[override]
        for model in models:
            self.register_model(model)
            model.enable_latency_logging = False  # per-request INFO lines would only repeat the metrics
        if self.workers > 1:  # KServe's multi-worker start serves its own app, without the guard
            raise ValueError(
                "--workers > 1 is not supported: KServe's multi-worker server would serve its own app "
                "without hyperrec's request guard (run more replicas instead)"
            )
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(self._serve_all())

    async def _serve_all(self) -> None:
        import uvicorn

        self.setup_event_loop()
        config = uvicorn.Config(
            create_rest_app(self, self.http),
            host=self.bind_host,
            port=self.http_port,
            log_config=None,
            timeout_keep_alive=self.timeout_keep_alive,
            loop="asyncio",
            access_log=False,  # no line per request
        )
        self._uvicorn = uvicorn.Server(config)
        freeze_startup_heap()
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

        from .grpc_guard import GuardedServicer

        self._grpc = aio.server(
            futures.ThreadPoolExecutor(max_workers=self.max_threads),
            interceptors=(ExceptionToStatusInterceptor(),),
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            GuardedServicer(self.dataplane, self.model_repository_extension, self.http), self._grpc
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


def freeze_startup_heap() -> None:
    """Move every object alive after start-up (the catalogue, the model session, the app) out of the
    collector's reach (``gc.freeze``).

    A full collection otherwise walks those long-lived objects again and again, and the request that
    triggers it waits for it: a tail-latency cost that has nothing to do with the request.
    """
    gc.collect()
    gc.freeze()
    logger.debug("froze %d start-up objects out of the garbage collector", gc.get_freeze_count())


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (as KServe's own server picks it), else asyncio's default.

    uvloop runs the same callbacks with less CPU per socket event: on the transformer's path (one HTTP request
    in, one gRPC call out, one answer back) that is a large part of the work per request (issue 11).
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free right now on ``host``.

    All sockets stay bound until every port is picked: separate ``free_port`` calls may be given the same
    port again once the first socket closes, and two servers told to share a port fail to start.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                   for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def stop_on_load_failure(_: BaseException) -> None:
    """A bundle that cannot load will never serve: stop the process so the orchestrator sees it."""
    os.kill(os.getpid(), signal.SIGTERM)
