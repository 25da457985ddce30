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
batches (one write + fsync per batch) and hands each batch to ``on_served`` (the bandit's impression update).
Impressions still queued when the process is killed are lost: a served record is a log, never an
acknowledgement. The feedback model stamps feedback with the revision of the answer it finds here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hyperrec.online.bandits.feedback import ServedItem
from hyperrec.online.feedback import FeedbackLog

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
    """Recent answers by request id, and their impressions appended to ``log`` off the request path."""

    def __init__(
        self,
        log: FeedbackLog,
        *,
        cache_size: int,
        log_served: bool = True,
        on_served: Callable[[Sequence[ServedAnswer]], None] | None = None,
    ) -> None:
        self.log = log
        self.cache_size = cache_size
        self.log_served = log_served
        self._on_served = on_served
        self._recent: OrderedDict[str, ServedAnswer] = OrderedDict()
        self._clicked: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        if log_served or on_served is not None:
            self._writer = threading.Thread(target=self._drain, name="served-journal", daemon=True)
            self._writer.start()

    def record(self, answer: ServedAnswer) -> None:
        """Remember the answer and queue its impressions (O(1) on the request path)."""
        with self._lock:
            self._recent[answer.request_id] = answer
            self._recent.move_to_end(answer.request_id)
            while len(self._recent) > self.cache_size:
                old, _ = self._recent.popitem(last=False)
                self._clicked.pop(old, None)
        if self._writer is not None:
            self._queue.put(answer)

    def lookup(self, request_id: str) -> ServedAnswer | None:
        """The answer served under ``request_id`` if it is still in memory."""
        with self._lock:
            return self._recent.get(request_id)

    def claim_click(self, request_id: str, item_id: str) -> ServedItem | None:
        """The shown item clicked, the first time a click on it is claimed; None when not shown (or known) or
        already claimed (so a repeated click never rewards the bandit twice)."""
        with self._lock:
            answer = self._recent.get(request_id)
            if answer is None:
                return None
            clicked = self._clicked.setdefault(request_id, set())
            if item_id in clicked:
                return None
            for served in answer.items:
                if served.item_id == item_id:
                    clicked.add(item_id)
                    return served
            return None

    def forget(self, users: set[str]) -> int:
        """Write what is queued (so the erasure that follows finds it in the log), then drop the users' recent
        answers from memory; returns how many went (hyperrec.privacy)."""
        self.flush()
        with self._lock:
            gone = [rid for rid, answer in self._recent.items() if answer.user in users]
            for rid in gone:
                del self._recent[rid]
                self._clicked.pop(rid, None)
        return len(gone)

    def flush(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        if self._writer is None:
            return
        done = threading.Event()
        self._queue.put(_Marker(done))
        done.wait()

    def close(self) -> None:
        """Write what is queued, stop the writer and close the log."""
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
            self._writer = None
        self.log.close()

    def _drain(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._write(batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[ServedAnswer], bool]:
        batch: list[ServedAnswer] = []
        item = self._queue.get()
        while True:
            if item is _STOP:
                return batch, True
            if isinstance(item, _Marker):
                if batch:
                    self._write(batch)
                    batch = []
                item.done.set()
            else:
                batch.append(item)  # type: ignore[arg-type]
            if len(batch) >= MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _write(self, batch: list[ServedAnswer]) -> None:
        if self.log_served:
            try:
                self.log.append([record for answer in batch for record in answer.records()])
            except OSError:
                logger.exception("could not append %d served answers to the feedback log", len(batch))
        if self._on_served is not None:
            try:
                self._on_served(batch)
            except Exception:  # noqa: BLE001 - the bandit never breaks serving
                logger.exception("the served-answer hook failed for %d answers", len(batch))


@dataclass(frozen=True)
class _Marker:
    done: threading.Event


_STOP = object()


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
