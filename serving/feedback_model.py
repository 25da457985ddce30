"""The feedback model (served as ``feedback``) and the served journal the transformer and it share.

``FeedbackModel`` appends impressions, clicks, dwell and ratings to the crash-safe feedback log:
``POST /v1/models/feedback:predict``. Each event is stamped with the revision, model and policy of the answer
it is about (found by request id among the recent answers), and the first click on a shown item of a bandit
answer rewards the bandit. An event is acknowledged only once it is on disk (``ServedJournal.commit``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest

from hyperrec.online.bandits.feedback import Impression
from hyperrec.online.bandits.reranker import BanditReranker
from hyperrec.online.errors import InvalidRequest
from hyperrec.online.feedback import FeedbackLog, parse_feedback
from hyperrec.online.served import ServedJournal
from hyperrec.online.service import RANKER_POLICY
from hyperrec.online.settings import ServingConfig

from .metrics import ERRORS, FEEDBACK_EVENTS, STAGE_SECONDS
from .served_revisions import NoExplanation

__all__ = ["FeedbackModel", "open_journal"]


class FeedbackModel(NoExplanation, Model):
    """Appends feedback events: ``POST /v1/models/feedback:predict`` with
    ``{"request_id", "user_id", "events"}``.

    ``journal``: the transformer's recent answers (shared log); without one the model opens its own log and
    stamps only ``serving.revision``.
    """

    def __init__(self, settings: ServingConfig, *, pseudonymize: Callable[[str], str], name: str = "feedback",
                 journal: ServedJournal | None = None, bandit: BanditReranker | None = None,
                 known_item: Callable[[str], bool] | None = None) -> None:
        super().__init__(name)
        self.settings = settings
        self.known_item = known_item  # is an item id in the served catalogue? (None: not checked)
        self._pseudonymize = pseudonymize
        self._journal = journal
        self._owns_journal = False
        self.bandit = bandit

    def load(self) -> bool:
        if self._journal is None:
            self._journal = open_journal(self.settings, log_served=False)
            self._owns_journal = True
        self.ready = True
        return True

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        if not self.ready or self._journal is None:
            raise ModelNotReady(self.name, "the feedback log is not open")
        try:
            if isinstance(payload, InferRequest):
                raise InvalidRequest(f"feedback takes JSON on POST /v1/models/{self.name}:predict")
            records = parse_feedback(
                payload, pseudonymize=self._pseudonymize, max_events=self.settings.feedback_max_events,
                max_user_id_chars=self.settings.max_user_id_chars, known_item=self.known_item,
                limits=self.settings.http,
            )
        except InvalidRequest as exc:
            ERRORS.labels(model=self.name, kind="invalid_request", revision=self.settings.revision).inc()
            raise InvalidInput(str(exc)) from None
        return self._stamp(records)

    def _stamp(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the revision, model and policy of the answer the events are about (when known)."""
        assert self._journal is not None
        answer = self._journal.lookup(records[0]["request_id"])
        if answer is not None:
            fields = {"revision": answer.revision, "model_name": answer.model_name,
                      "bundle_version": answer.bundle_version, "policy": answer.policy}
            if answer.model_version is not None:
                fields["model_version"] = answer.model_version
        elif self.settings.split.challenger_bundle_dir is None:
            fields = {
                "revision": self.settings.revision
            }  # one revision: it answered, whatever the cache says
        else:
            fields = {}  # split, answer no longer in memory: left unlabelled rather than guessed
        return [{**record, **fields} for record in records]

    async def predict(
        self, records: list[dict[str, Any]], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        assert self._journal is not None
        started = time.perf_counter()
        accepted = await asyncio.wrap_future(
            self._journal.commit(records)
        )  # on disk (fsynced) when it returns
        STAGE_SECONDS.labels(model=self.name, stage="feedback", revision=self.settings.revision).observe(
            time.perf_counter() - started)
        for record in records:
            FEEDBACK_EVENTS.labels(type=record["type"]).inc()
        if self.bandit is not None:
            rewards = self._rewards(records)
            if rewards:
                await asyncio.to_thread(self.bandit.reward, rewards)
        answer: dict[str, Any] = {"request_id": records[0]["request_id"], "accepted": accepted}
        if "revision" in records[0]:
            answer["revision"] = records[0]["revision"]
        return answer

    def _rewards(self, records: list[dict[str, Any]]) -> list[Impression]:
        """The first click on each shown item of a bandit answer, as a clicked impression (dwell when
        sent)."""
        assert self._journal is not None
        dwell: dict[str, float] = {}
        for record in records:
            if record["type"] == "dwell":
                dwell[record["item_id"]] = dwell.get(record["item_id"], 0.0) + float(record["value"])
        rewards = []
        for record in records:
            if record["type"] != "click" or record.get("policy") in (None, RANKER_POLICY):
                continue
            served = self._journal.claim_click(record["request_id"], record["item_id"])
            if served is not None:
                rewards.append(
                    Impression.from_served(served, clicked=True, dwell_seconds=dwell.get(served.item_id))
                )
        return rewards

    def stop(self) -> None:
        if self._journal is not None and self._owns_journal:
            self._journal.close()
        self._journal = None
        self.ready = False


def open_journal(settings: ServingConfig, *, log_served: bool | None = None,
                 bandit: BanditReranker | None = None) -> ServedJournal:
    """The served journal on ``serving.feedback_dir``; with a bandit, served slates count as its
    impressions."""
    log = FeedbackLog(settings.feedback_dir, rotate_bytes=settings.feedback_rotate_bytes)
    on_served = None
    if bandit is not None:
        def on_served(answers: Any) -> None:
            bandit.update([Impression.from_served(item, clicked=False) for answer in answers
                           if answer.policy != RANKER_POLICY for item in answer.items])
    return ServedJournal(
        log,
        cache_size=settings.served_cache_size,
        log_served=settings.log_served if log_served is None else log_served,
        on_served=on_served,
        write_interval_s=settings.served_write_interval_s,
    )
