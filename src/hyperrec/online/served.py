"""What was served: one impression record per shown item in the feedback log, and recent answers in memory.

Record of a shown item (``type: "impression"``, the same crash-safe log and line format as the feedback)::

    {"request_id": "r1", "user": "<pseudonym>", "type": "impression", "item_id": "m9", "value": null,
     "ts": 1732500000.0, "received": 1732500000.0, "revision": "champion", "model_name": "ranker",
     "bundle_version": "20250101-ab12", "model_version": "3",   # model_version: registry version, when known
     "policy": "epsilon_greedy", "position": 0, "ranker_rank": 4, "propensity": 0.82,
     "segment": 2, "history_length": 25, "source": "served",
     "item_features": [...],          # bandit answers only (what LinUCB learns from)
     "candidates": ["m3", "m9", ...]} # bandit answers, position-0 record only: the ranker's top-N (for OPE)

``source: "served"`` tells these records from impressions a client reports itself. The join
(``hyperrec.online.feedback_join``) matches clicks to them by ``(request_id, item_id)``.

``ServedJournal`` keeps the request path lean: ``record`` only puts the answer in a bounded in-memory map
(LRU, ``serving.served_cache_size``) and on a queue; one background thread appends the queued impressions in
batches, at most ``serving.served_write_interval_s`` after they were queued (one write + fsync per batch), and
hands each batch to ``on_served`` (the bandit's impression update). The feedback model's events go through the
same thread (``commit``): written with the queued impressions, fsynced, and only then acknowledged, so many
concurrent feedback calls share one fsync and none is acknowledged before it is on disk. Impressions still
queued when the process is killed are lost: a served record is a log, never an acknowledgement. The feedback
model stamps feedback with the revision of the answer it finds here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from typing import Any

from hyperrec.online.bandits.feedback import ServedItem
from hyperrec.online.feedback import FeedbackLog, encode_records

logger = logging.getLogger(__name__)

SERVED_SOURCE = "served"
#: Most answers the writer thread appends in one batch.
MAX_BATCH = 512


@dataclass(frozen=True)
class ServedAnswer:
    """One answer as served: who, which revision and model, which policy, the shown items in order."""

    request_id: str
    user: str
    revision: str
    model_name: str
    #: The bundle manifest's version.
    bundle_version: str
    #: The MLflow registry version, when the server knows it (what the canary's CTR counts filter on).
    model_version: str | None
    policy: str
    items: tuple[ServedItem, ...]
    #: The ranker's top-N the policy chose among, best first (bandit answers); None for the plain ranking.
    candidates: tuple[str, ...] | None
    ts: float

    def records(self) -> list[dict[str, Any]]:
        """The impression records of the feedback log, one per shown item (see the module doc)."""
        out = []
        for served in self.items:
            record: dict[str, Any] = {
                "request_id": self.request_id,
                "user": self.user,
                "type": "impression",
                "item_id": served.item_id,
                "value": None,
                "ts": self.ts,
                "received": self.ts,
                "revision": self.revision,
                "model_name": self.model_name,
                "bundle_version": self.bundle_version,
                "policy": self.policy,
                "position": served.position,
                "ranker_rank": served.ranker_rank,
                "propensity": served.propensity,
                "segment": served.segment,
                "history_length": served.history_length,
                "source": SERVED_SOURCE,
            }
            if self.model_version is not None:
                record["model_version"] = self.model_version
            if served.item_features:
                record["item_features"] = list(served.item_features)
            if self.candidates is not None and served.position == 0:
                record["candidates"] = list(self.candidates)
            out.append(record)
        return out


class ServedJournal:
    """Recent answers by request id; their impressions and acknowledged feedback go to ``log`` in group
    commits.

    One writer thread owns the log. ``record`` queues an answer; the writer takes the queued answers at the
    latest ``write_interval_s`` after the first of them (or at ``MAX_BATCH``), so under load one write and one
    fsync cover many requests. ``commit`` queues feedback records that must be on disk before they are
    acknowledged: the writer takes them at once, with whatever answers are queued, and resolves the returned
    future only after the fsync. Concurrent commits share one fsync (group commit).
    """

    def __init__(
        self,
        log: FeedbackLog,
        *,
        cache_size: int,
        log_served: bool = True,
        on_served: Callable[[Sequence[ServedAnswer]], None] | None = None,
        write_interval_s: float = 0.05,
    ) -> None:
        self.log = log
        self.cache_size = cache_size
        self.log_served = log_served
        self.write_interval_s = write_interval_s
        self._on_served = on_served
        #: request id -> the answer packed into plain tuples (``_pack``), which the garbage collector stops
        #: tracking: 50,000 cached answers as objects are ~600,000 it would walk on every full collection.
        self._recent: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._clicked: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(threading.Lock())
        self._pending = _Pending()
        self._writer: threading.Thread | None = threading.Thread(target=self._run, name="served-journal",
                                                                 daemon=True)
        self._writer.start()

    def record(self, answer: ServedAnswer) -> None:
        """Remember the answer and queue its impressions (O(1) on the request path)."""
        packed = _pack(answer)
        with self._lock:
            self._recent[answer.request_id] = packed
            self._recent.move_to_end(answer.request_id)
            while len(self._recent) > self.cache_size:
                old, _ = self._recent.popitem(last=False)
                self._clicked.pop(old, None)
        if not (self.log_served or self._on_served is not None):
            return
        with self._wake:
            pending = self._pending
            if pending.stop:
                return
            pending.answers.append(answer)
            if len(pending.answers) == 1:
                pending.first_answer_at = time.monotonic()
                self._wake.notify()  # the writer starts the interval's clock
            elif len(pending.answers) >= MAX_BATCH:
                self._wake.notify()

    def commit(self, records: Sequence[dict[str, Any]]) -> Future[int]:
        """Queue feedback records for the next group commit; the future holds how many were written once they
        are fsynced (or the write's error). Raises ValueError after ``close``."""
        future: Future[int] = Future()
        with self._wake:
            if self._pending.stop:
                raise ValueError("the served journal is closed")
            self._pending.commits.append((list(records), future))
            self._wake.notify()
        return future

    def lookup(self, request_id: str) -> ServedAnswer | None:
        """The answer served under ``request_id`` if it is still in memory."""
        with self._lock:
            packed = self._recent.get(request_id)
        return None if packed is None else _unpack(packed)

    def claim_click(self, request_id: str, item_id: str) -> ServedItem | None:
        """The shown item clicked, the first time a click on it is claimed; None when not shown (or known) or
        already claimed (so a repeated click never rewards the bandit twice)."""
        with self._lock:
            packed = self._recent.get(request_id)
            if packed is None:
                return None
            clicked = self._clicked.setdefault(request_id, set())
            if item_id in clicked:
                return None
            for served in packed[_ITEMS]:
                if served[_ITEM_ID] == item_id:
                    clicked.add(item_id)
                    return ServedItem(*served)
            return None

    def forget(self, users: set[str]) -> int:
        """Write what is queued (so the erasure that follows finds it in the log), then drop the users' recent
        answers from memory; returns how many went (hyperrec.privacy)."""
        self.flush()
        with self._lock:
            gone = [rid for rid, packed in self._recent.items() if packed[_USER] in users]
            for rid in gone:
                del self._recent[rid]
                self._clicked.pop(rid, None)
        return len(gone)

    def flush(self) -> None:
        """Wait until everything queued so far is written (tests, erasure, shutdown)."""
        if self._writer is None:
            return
        done = threading.Event()
        with self._wake:
            if self._pending.stop:
                return  # close writes everything queued
            self._pending.markers.append(done)
            self._wake.notify()
        done.wait()

    def close(self) -> None:
        """Write what is queued, stop the writer and close the log."""
        if self._writer is not None:
            with self._wake:
                self._pending.stop = True
                self._wake.notify()
            self._writer.join()
            self._writer = None
        self.log.close()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            self._write(batch)
            for done in batch.markers:
                done.set()
            if batch.stop:
                return

    def _next_batch(self) -> _Pending:
        """Wait until something is due, then take everything queued."""
        with self._wake:
            while True:
                pending = self._pending
                if pending.stop or pending.commits or pending.markers or len(pending.answers) >= MAX_BATCH:
                    break
                if not pending.answers:
                    self._wake.wait()
                    continue
                left = pending.first_answer_at + self.write_interval_s - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            self._pending = _Pending(stop=pending.stop)
            return pending

    def _write(self, batch: _Pending) -> None:
        """One write + fsync for the batch's impressions and commits; then the futures and the hook."""
        data = b""
        if self.log_served and batch.answers:
            try:
                data = encode_records(record for answer in batch.answers for record in answer.records())
            except (TypeError, ValueError):
                logger.exception("could not encode %d served answers", len(batch.answers))
        commits = []
        for records, future in batch.commits:
            try:
                commits.append((records, future, encode_records(records)))
            except (TypeError, ValueError) as exc:
                future.set_exception(exc)
        try:
            self.log.write_encoded(data + b"".join(encoded for _, _, encoded in commits))
        except Exception as exc:  # noqa: BLE001 - every commit must hear of it; the writer must live on
            logger.exception("could not append %d served answers and %d feedback batches to the feedback log",
                             len(batch.answers), len(commits))
            for _, future, _ in commits:
                future.set_exception(exc)
        else:
            for records, future, _ in commits:
                future.set_result(len(records))
        if self._on_served is not None and batch.answers:
            try:
                self._on_served(batch.answers)
            except Exception:  # noqa: BLE001 - the bandit never breaks serving
                logger.exception("the served-answer hook failed for %d answers", len(batch.answers))


@dataclass
class _Pending:
    """What the writer has not taken yet."""

    answers: list[ServedAnswer] = field(default_factory=list)
    #: Monotonic time of the first queued answer (the write interval runs from it).
    first_answer_at: float = 0.0
    commits: list[tuple[list[dict[str, Any]], Future[int]]] = field(default_factory=list)
    markers: list[threading.Event] = field(default_factory=list)
    stop: bool = False


_ANSWER_FIELDS = tuple(f.name for f in fields(ServedAnswer))
_ITEM_FIELDS = tuple(f.name for f in fields(ServedItem))
_USER, _ITEMS = _ANSWER_FIELDS.index("user"), _ANSWER_FIELDS.index("items")
_ITEM_ID = _ITEM_FIELDS.index("item_id")


def _pack(answer: ServedAnswer) -> tuple[Any, ...]:
    """The answer as nested tuples of its field values, in field order (strings, numbers, None and tuples of
    them only), so that the collector untracks them; ``_unpack`` rebuilds the objects."""
    values = [getattr(answer, name) for name in _ANSWER_FIELDS]
    values[_ITEMS] = tuple(tuple(getattr(item, name) for name in _ITEM_FIELDS) for item in answer.items)
    return tuple(values)


def _unpack(packed: tuple[Any, ...]) -> ServedAnswer:
    values = list(packed)
    values[_ITEMS] = tuple(ServedItem(*item) for item in packed[_ITEMS])
    return ServedAnswer(*values)


def served_answer(response: dict[str, Any], items: Sequence[ServedItem], candidates: Sequence[str] | None,
                  user: str) -> ServedAnswer:
    """The ``ServedAnswer`` of a transformer response and the slate's served items."""
    model = response["model"]
    return ServedAnswer(
        request_id=response["request_id"],
        user=user,
        revision=response["revision"],
        model_name=model["name"],
        bundle_version=model["version"],
        model_version=model.get("registered_version"),
        policy=response["policy"]["name"],
        items=tuple(items),
        candidates=None if candidates is None else tuple(candidates),
        ts=time.time(),
    )
