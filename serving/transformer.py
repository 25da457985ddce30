"""The recommend transformer and the feedback model.

``RecommendTransformer`` is a KServe transformer: it overrides ``preprocess`` and ``postprocess``.

- preprocess: validate the JSON request, build the model input with ``hyperrec.features`` (the code path
  training uses, so no skew), and call the predictor over V2 with tritonclient. A predictor that is down,
  slow or wrong does not fail the request: the call ends within ``request_timeout_s`` and the answer is the
  popularity fallback flagged ``"degraded": true``.
- postprocess: rank the scores under the business rules, fall back to (segment-)popular items for users
  without known history, explain, attach model version and request id.

One deviation from the plain transformer pattern: ``predict`` is an identity step, because the predictor was
already called inside preprocess. KServe's default ``predict`` would call ``predictor_host`` with its own
client and turn a predictor failure into an error for the client; the degraded fallback needs the call
where its failure can still be handled.

``FeedbackModel`` (served as ``feedback``) appends impressions, clicks, dwell and ratings to the
crash-safe feedback log: ``POST /v1/models/feedback:predict``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest

from hyperrec.export.bundle import verify_bundle
from hyperrec.online.catalogue import Catalogue
from hyperrec.online.errors import InvalidRequest, PredictorUnavailable
from hyperrec.online.feedback import FeedbackLog, parse_feedback
from hyperrec.online.service import Plan, RecommendationService
from hyperrec.online.settings import ServingConfig

from .metrics import CANDIDATES_SCORED, DEGRADED, ERRORS, FALLBACKS, FEEDBACK_EVENTS, STAGE_SECONDS
from .v2_client import ScoresClient, TritonV2Client

logger = logging.getLogger(__name__)

ScorerFactory = Callable[[dict[str, Any]], ScoresClient]


@dataclass(frozen=True)
class Scored:
    """preprocess → postprocess hand-over for one request (per-request state never lives on the model)."""

    plan: Plan
    scores: np.ndarray | None
    degraded_reason: str | None

    def __contains__(self, key: object) -> bool:
        # kserve.Model.validate probes payloads with `"inputs" in payload`; this is not a V2 payload.
        return False


class RecommendTransformer(Model):
    """KServe transformer answering ``POST /v1/models/<name>:predict`` with ranked recommendations."""

    def __init__(
        self,
        name: str,
        bundle_dir: Path,
        settings: ServingConfig,
        *,
        pseudonymize: Callable[[str], str],
        scorer_factory: ScorerFactory | None = None,
    ) -> None:
        super().__init__(name, return_response_headers=True)
        self.bundle_dir = Path(bundle_dir)
        self.settings = settings
        self._pseudonymize = pseudonymize
        self._scorer_factory = scorer_factory
        self._service: RecommendationService | None = None
        self._scorer: ScoresClient | None = None
        self._load_lock = threading.Lock()
        self.load_error: str | None = None

    # -------------------------------------------------------------------------------------- lifecycle

    def load(self) -> bool:
        """Verify and load the bundle (idempotent; returns at once while another thread loads)."""
        if not self._load_lock.acquire(blocking=False):
            return self.ready
        try:
            if self.ready:
                return True
            manifest = verify_bundle(self.bundle_dir)
            catalogue = Catalogue.from_bundle(self.bundle_dir)
            self._service = RecommendationService(
                catalogue,
                model_name=str(manifest["model_name"]),
                model_version=str(manifest["version"]),
                max_history=int(manifest["max_history"]),
                settings=self.settings,
                pseudonymize=self._pseudonymize,
            )
            if self._scorer_factory is not None:
                self._scorer = self._scorer_factory(manifest)
            else:
                self._scorer = TritonV2Client(self.settings, str(manifest["model_name"]), int(manifest["n_items"]))
            self.ready = True
            logger.info("transformer %s ready: bundle %s version %s, %d items, predictor %s via %s",
                        self.name, manifest["model_name"], manifest["version"], catalogue.n_items,
                        self.settings.predictor_url, self.settings.predictor_protocol)
            return True
        finally:
            self._load_lock.release()

    def start_loading(self, on_error: Callable[[BaseException], None] | None = None) -> threading.Thread:
        """Load in a background thread; requests get 503 until it is done."""

        def run() -> None:
            try:
                self.load()
            except BaseException as exc:  # noqa: BLE001 - reported; the server decides (by default it stops)
                self.load_error = str(exc)
                logger.error("transformer %s failed to load its bundle: %s", self.name, exc)
                if on_error is not None:
                    on_error(exc)

        thread = threading.Thread(target=run, name=f"load-{self.name}", daemon=True)
        thread.start()
        return thread

    # -------------------------------------------------------------------------------------- stages

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Scored:
        service = self._require_service()
        started = time.perf_counter()
        try:
            if isinstance(payload, InferRequest):
                raise InvalidRequest(
                    f"{self.name} takes a JSON recommend request on POST /v1/models/{self.name}:predict"
                )
            plan = service.prepare(payload, (headers or {}).get("x-request-id"))
        except InvalidRequest as exc:
            ERRORS.labels(model=self.name, kind="invalid_request").inc()
            raise InvalidInput(str(exc)) from None
        finally:
            STAGE_SECONDS.labels(model=self.name, stage="preprocess").observe(time.perf_counter() - started)
        if not plan.needs_model:
            return Scored(plan, None, None)
        started = time.perf_counter()
        scores, reason = None, None
        try:
            assert self._scorer is not None
            scores = (await self._scorer.score(plan.model_inputs, plan.request.request_id))[0]
        except PredictorUnavailable as exc:
            reason = "predictor_unavailable"
            ERRORS.labels(model=self.name, kind="predictor").inc()
            logger.warning("request %s: predictor unavailable, answering degraded: %s", plan.request.request_id, exc)
        except Exception:  # never let a predictor-side surprise become a 500
            reason = "predictor_error"
            ERRORS.labels(model=self.name, kind="predictor").inc()
            logger.exception("request %s: unexpected predictor error, answering degraded", plan.request.request_id)
        finally:
            STAGE_SECONDS.labels(model=self.name, stage="predictor").observe(time.perf_counter() - started)
        return Scored(plan, scores, reason)

    async def predict(
        self, payload: Scored, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Scored:
        """Identity: the predictor was called in preprocess (see the module doc)."""
        return payload

    def postprocess(
        self, result: Scored, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        service = self._require_service()
        started = time.perf_counter()
        plan, reason = result.plan, result.degraded_reason
        try:
            response = service.answer(plan, result.scores, degraded_reason=reason)
        except Exception:  # a bug in ranking must still not become a 500: answer from popularity
            logger.exception("request %s: ranking failed, answering degraded", plan.request.request_id)
            ERRORS.labels(model=self.name, kind="internal").inc()
            reason = "internal_error"
            response = service.answer(plan, None, degraded_reason=reason)
        finally:
            STAGE_SECONDS.labels(model=self.name, stage="postprocess").observe(time.perf_counter() - started)
        if reason is not None:
            DEGRADED.labels(model=self.name, reason=reason).inc()
        elif result.scores is None:
            FALLBACKS.labels(model=self.name, source=response["source"]).inc()
        if result.scores is not None:
            n = service.catalogue.n_items if plan.candidate_idx is None else int(plan.candidate_idx.size)
            CANDIDATES_SCORED.labels(model=self.name).inc(n)
        if response_headers is not None:
            response_headers["x-request-id"] = plan.request.request_id
        return response

    def _require_service(self) -> RecommendationService:
        if not self.ready or self._service is None:
            ERRORS.labels(model=self.name, kind="not_ready").inc()
            raise ModelNotReady(self.name, "the serving bundle is still loading")
        return self._service

    async def close(self) -> None:
        if self._scorer is not None:
            await self._scorer.close()


class FeedbackModel(Model):
    """Appends feedback events: ``POST /v1/models/feedback:predict`` with ``{"request_id", "user_id", "events"}``."""

    def __init__(self, settings: ServingConfig, *, pseudonymize: Callable[[str], str], name: str = "feedback") -> None:
        super().__init__(name)
        self.settings = settings
        self._pseudonymize = pseudonymize
        self._log: FeedbackLog | None = None

    def load(self) -> bool:
        if self._log is None:
            self._log = FeedbackLog(self.settings.feedback_dir, rotate_bytes=self.settings.feedback_rotate_bytes)
        self.ready = True
        return True

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        if not self.ready or self._log is None:
            raise ModelNotReady(self.name, "the feedback log is not open")
        try:
            if isinstance(payload, InferRequest):
                raise InvalidRequest(f"feedback takes JSON on POST /v1/models/{self.name}:predict")
            return parse_feedback(
                payload, pseudonymize=self._pseudonymize, max_events=self.settings.feedback_max_events,
                max_user_id_chars=self.settings.max_user_id_chars,
            )
        except InvalidRequest as exc:
            ERRORS.labels(model=self.name, kind="invalid_request").inc()
            raise InvalidInput(str(exc)) from None

    async def predict(self, records: list[dict[str, Any]], headers: dict[str, str] | None = None) -> dict[str, Any]:
        assert self._log is not None
        started = time.perf_counter()
        accepted = await asyncio.to_thread(self._log.append, records)  # write + fsync off the event loop
        STAGE_SECONDS.labels(model=self.name, stage="feedback").observe(time.perf_counter() - started)
        for record in records:
            FEEDBACK_EVENTS.labels(type=record["type"]).inc()
        return {"request_id": records[0]["request_id"], "accepted": accepted}

    def stop(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self.ready = False
