"""The recommend transformer.

``RecommendTransformer`` is a KServe transformer: it overrides ``preprocess`` and ``postprocess``.

- preprocess: validate the JSON request, build the model input with ``hyperrec.features`` (the code path
  training uses, so no skew), and call the predictor over V2 with tritonclient. A predictor that is down,
  slow or wrong does not fail the request: the call ends within ``request_timeout_s`` and the answer is the
  popularity fallback flagged ``"degraded": true``.
- postprocess: rank the scores under the business rules, fall back to (segment-)popular items for users
  without known history, let the bandit (``bandit.enabled``) choose the slate among the top N, explain,
  attach request id, model name and version, revision, policy and per-item propensity; hand the answer to
  the ``ServedJournal`` (impression records in the feedback log, written off the request path), which the
  feedback model (``serving/feedback_model.py``) shares.

Revisions: the champion (``serving.revision``) always; with ``serving.split.challenger_bundle_dir`` a
challenger beside it, each request going to one of them (``serving/revisions.py``, ``hyperrec.online.split``).

One deviation from the plain transformer pattern: ``predict`` is an identity step, because the predictor was
already called inside preprocess. KServe's default ``predict`` would call ``predictor_host`` with its own
client and turn a predictor failure into an error for the client; the degraded fallback needs the call
where its failure can still be handled.
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

from hyperrec.online.bandits.reranker import BanditReranker
from hyperrec.online.errors import InvalidRequest, PredictorUnavailable
from hyperrec.online.ranking import RankedItems
from hyperrec.online.served import ServedJournal, served_answer
from hyperrec.online.service import Answered, Plan
from hyperrec.online.settings import ServingConfig
from hyperrec.online.split import TrafficSplit
from hyperrec.privacy.serving_guard import PrivacyGuard

from .metrics import (
    BANDIT_PLAIN,
    DEGRADED,
    ERRORS,
    FALLBACKS,
    RevisionSeries,
)
from .model_scores import model_scores
from .revisions import Revision, RevisionSpec, ScorerFactory, load_revision
from .served_revisions import ServedRevisions

logger = logging.getLogger(__name__)

__all__ = ["RecommendTransformer", "ScorerFactory"]


@dataclass(frozen=True)
class Scored:
    """preprocess → postprocess hand-over for one request (per-request state never lives on the model)."""

    plan: Plan
    scores: np.ndarray | None
    degraded_reason: str | None
    revision: Revision
    #: The first items after the rules when the predictor's top k decided them (serving/model_scores.py).
    ranked: RankedItems | None = None

    def __contains__(self, key: object) -> bool:
        # kserve.Model.validate probes payloads with `"inputs" in payload`; this is not a V2 payload.
        return False


class RecommendTransformer(ServedRevisions, Model):
    """KServe transformer answering ``POST /v1/models/<name>:predict`` with ranked recommendations."""

    def __init__(
        self,
        name: str,
        bundle_dir: Path,
        settings: ServingConfig,
        *,
        pseudonymize: Callable[[str], str],
        scorer_factory: ScorerFactory | None = None,
        challenger: RevisionSpec | None = None,
        journal: ServedJournal | None = None,
        bandit: BanditReranker | None = None,
        registered_version: str | None = None,
        privacy: PrivacyGuard | None = None,
    ) -> None:
        super().__init__(name, return_response_headers=True)
        self.privacy = privacy
        self.bundle_dir = Path(bundle_dir)
        self.settings = settings
        self.specs = [
            RevisionSpec(settings.revision, self.bundle_dir, scorer_factory, settings, registered_version)
        ]
        if challenger is not None:
            self.specs.append(challenger)
        self.split = TrafficSplit(settings.split.challenger_percent if challenger else 0,
                                  sticky=settings.split.sticky)
        self.journal = journal
        self.bandit = bandit
        self._pseudonymize = pseudonymize
        self._revisions: list[Revision] = []
        self._series: dict[str, RevisionSeries] = {}
        self._load_lock = threading.Lock()
        self.load_error: str | None = None

    # -------------------------------------------------------------------------------------- lifecycle

    def load(self) -> bool:
        """Verify and load every revision's bundle (idempotent; returns at once while another thread
        loads)."""
        if not self._load_lock.acquire(blocking=False):
            return self.ready
        try:
            if self.ready:
                return True
            self._revisions = [load_revision(spec, self.settings, self._pseudonymize) for spec in self.specs]
            self._series = {
                revision.name: RevisionSeries.of(self.name, revision.name) for revision in self._revisions
            }
            self.ready = True
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
        champion = self._require_ready()
        started = time.perf_counter()
        revision = None if self.split.sticky else self._pick(None)
        try:
            if isinstance(payload, InferRequest):
                raise InvalidRequest(
                    f"{self.name} takes a JSON recommend request on POST /v1/models/{self.name}:predict"
                )
            request = champion.service.parse(payload, (headers or {}).get("x-request-id"))
            revision = revision or self._pick(request.user)
            plan = revision.service.plan(request, personalized=self.privacy is None
                                         or self.privacy.personalizes(request.user))
        except InvalidRequest as exc:
            ERRORS.labels(model=self.name, kind="invalid_request", revision=(revision or champion).name).inc()
            raise InvalidInput(str(exc)) from None
        finally:
            self._series[(revision or champion).name].stage["preprocess"].observe(
                time.perf_counter() - started
            )
        if not plan.needs_model:
            return Scored(plan, None, None, revision)
        return await self._score(plan, revision)

    async def _score(self, plan: Plan, revision: Revision) -> Scored:
        """Call the revision's predictor; any failure becomes a degraded answer, never an error."""
        started = time.perf_counter()
        scored, reason = None, None
        request_id = plan.request.request_id
        try:
            scored = await model_scores(revision, plan, self.bandit, self._series[revision.name])
        except PredictorUnavailable as exc:
            reason = "predictor_unavailable"
            ERRORS.labels(model=self.name, kind="predictor", revision=revision.name).inc()
            logger.warning("request %s: predictor unavailable, answering degraded: %s", request_id, exc)
        except Exception:  # never let a predictor-side surprise become a 500
            reason = "predictor_error"
            ERRORS.labels(model=self.name, kind="predictor", revision=revision.name).inc()
            logger.exception("request %s: unexpected predictor error, answering degraded", request_id)
        finally:
            self._series[revision.name].stage["predictor"].observe(time.perf_counter() - started)
        if scored is None:
            return Scored(plan, None, reason, revision)
        return Scored(plan, scored.scores, reason, revision, scored.ranked)

    async def predict(
        self,
        payload: Scored,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Scored:
        """Identity: the predictor was called in preprocess (see the module doc)."""
        return payload

    def postprocess(
        self,
        result: Scored,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self._require_ready()
        started = time.perf_counter()
        plan, reason, revision = result.plan, result.degraded_reason, result.revision
        service = revision.service
        try:
            answered = service.respond(plan, result.scores, degraded_reason=reason, bandit=self.bandit,
                                       ranked=result.ranked)
        except Exception:  # a bug in ranking must still not become a 500: answer from popularity
            logger.exception("request %s: ranking failed, answering degraded", plan.request.request_id)
            ERRORS.labels(model=self.name, kind="internal", revision=revision.name).inc()
            reason = "internal_error"
            answered = service.respond(plan, None, degraded_reason=reason)
        finally:
            self._series[revision.name].stage["postprocess"].observe(time.perf_counter() - started)
        self._count(result, answered, reason)
        if self.journal is not None:
            self.journal.record(
                served_answer(
                    answered.response,
                    answered.slate.served(plan.request.request_id),
                    answered.candidates,
                    plan.request.user,
                )
            )
        if response_headers is not None:
            response_headers["x-request-id"] = plan.request.request_id
        return answered.response

    def _count(self, result: Scored, answered: Answered, reason: str | None) -> None:
        labels = {"model": self.name, "revision": result.revision.name}
        if reason is not None:
            DEGRADED.labels(reason=reason, **labels).inc()
        elif result.scores is None:
            FALLBACKS.labels(source=answered.response["source"], **labels).inc()
        if result.scores is not None:
            service, plan = result.revision.service, result.plan
            n = service.catalogue.n_items if plan.candidate_idx is None else int(plan.candidate_idx.size)
            self._series[result.revision.name].candidates.inc(n)
        if answered.slate.degraded:
            BANDIT_PLAIN.labels(reason=answered.slate.reason or "unknown", **labels).inc()

    # -------------------------------------------------------------------------------------- split

    def _pick(self, user: str | None) -> Revision:
        revisions = self._revisions
        if len(revisions) > 1 and self.split.to_challenger(user):
            return revisions[1]
        return revisions[0]

    def split_state(self) -> dict[str, Any]:
        """The revisions and the challenger's share (``GET /hyperrec/split``)."""
        revisions = {
            r.name: {"bundle_version": r.service.model_version, "registered_version": r.registered_version}
            for r in self._revisions
        }
        return {"revisions": revisions, "challenger_percent": self.split.percent, "sticky": self.split.sticky,
                "ready": self.ready}

    def add_routes(self, app: Any) -> None:
        """``GET``/``PUT /hyperrec/split`` when serving a challenger (the local canary controller moves it);
        ``/hyperrec/forget`` and ``/hyperrec/consent`` with a privacy guard
        (hyperrec.privacy.serving_guard)."""
        if self.privacy is not None:
            self.privacy.add_routes(app, journal=self.journal,
                                    catalogues=lambda: [r.service.catalogue for r in self._revisions])
        if len(self.specs) < 2 or not self.settings.split.control:
            return
        from fastapi import Body, HTTPException

        @app.get("/hyperrec/split")
        async def get_split() -> dict[str, Any]:
            return self.split_state()

        @app.put("/hyperrec/split")
        async def put_split(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI idiom
            try:
                self.split.set_percent(body.get("challenger_percent"))
            except ValueError as exc:
                raise HTTPException(status_code=400, detail=str(exc)) from None
            logger.info("transformer %s: challenger share set to %d%%", self.name, self.split.percent)
            return self.split_state()

    def _require_ready(self) -> Revision:
        if not self.ready or not self._revisions:
            ERRORS.labels(model=self.name, kind="not_ready", revision=self.settings.revision).inc()
            raise ModelNotReady(self.name, "the serving bundle is still loading")
        return self._revisions[0]

    async def close(self) -> None:
        for revision in self._revisions:
            await revision.scorer.close()
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)
            self.journal = None
