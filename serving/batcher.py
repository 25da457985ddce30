"""Dynamic batching for the embedded predictor, the way Triton's dynamic batcher does it.

Concurrent infer calls queue their rows; one worker takes the queue as one batch (up to ``max_batch_size``
rows of the same sequence length), runs it once on a single inference thread and hands every caller its own
rows. The first request of a batch waits at most ``max_queue_delay_us`` for company, but only while requests
do come in company (the last batch merged several): a lone caller at concurrency 1 would only wait the delay
out, on every request (issue 11's latency target). While an inference runs, new requests queue anyway, so
under load batches form without any waiting.

A single-row request that finds the batcher idle (nothing queued or running, and the last run finished at
least ``lone_inline_gap_us`` ago) runs at once on the event loop's thread: at concurrency 1 the hand-over to
the inference thread and back cost a sixth of the predictor's CPU per request and two thread wake-ups of
latency. A request right behind another (a gap under the threshold: load) goes through the queue, so batches
still form.

The queue is bounded (``max_queued_rows``): past it a caller gets ``QueueFull`` at once instead of a growing
backlog.

A batch that fails as a whole (one request's bad segment, say) is rerun request by request, so one bad row
fails only its own caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

#: (history [B, S], segment [B], output names) -> one array per name, each with B rows.
RunFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], list[np.ndarray]]


class QueueFull(RuntimeError):
    """The batcher holds ``max_queued_rows`` rows already; the caller should back off and retry."""


@dataclass
class _Pending:
    history: np.ndarray
    segment: np.ndarray
    outputs: tuple[str, ...]
    future: asyncio.Future = field(repr=False)

    @property
    def rows(self) -> int:
        return int(self.history.shape[0])


class DynamicBatcher:
    """Merges concurrent ``submit`` calls into batched runs of ``run`` (one inference thread)."""

    def __init__(
        self, run: RunFn, *, max_batch_size: int, max_queue_delay_us: int, max_queued_rows: int,
        lone_inline_gap_us: int = 0,
    ) -> None:
        self._run = run
        self.max_batch_size = max_batch_size
        self.delay_s = max_queue_delay_us / 1e6
        self.max_queued_rows = max_queued_rows
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-infer")
        #: Whether the last batch merged more than one request: only then is the next one worth waiting for.
        self._in_company = False
        #: Idle gap after which a lone single-row request runs inline (None: never).
        self._inline_gap_s = lone_inline_gap_us / 1e6 if lone_inline_gap_us > 0 else None
        self._running = False
        self._last_done = float("-inf")
        #: Rows of each batch run so far (bounded: the last 1,000); tests and logs read it.
        self.batch_rows: deque[int] = deque(maxlen=1000)

    async def submit(
        self, history: np.ndarray, segment: np.ndarray, outputs: Sequence[str]
    ) -> list[np.ndarray]:
        """The outputs for these rows, computed in a batch with whatever else is queued."""
        rows = int(history.shape[0])
        if rows > self.max_batch_size:
            raise ValueError(f"batch of {rows} rows exceeds max_batch_size {self.max_batch_size}")
        if self._queued_rows + rows > self.max_queued_rows:
            raise QueueFull(
                f"{self._queued_rows} rows already queued (max_queued_rows {self.max_queued_rows})"
            )
        if rows == 1 and self._idle():
            return self._run_inline(history, segment, tuple(outputs))
        self._ensure_worker()
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(history, segment, tuple(outputs), future))
        self._queued_rows += rows
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _idle(self) -> bool:
        return (self._inline_gap_s is not None and not self._queue and not self._running
                and time.perf_counter() - self._last_done >= self._inline_gap_s)

    def _run_inline(
        self, history: np.ndarray, segment: np.ndarray, outputs: tuple[str, ...]
    ) -> list[np.ndarray]:
        self.batch_rows.append(1)
        self._in_company = False
        try:
            return self._run(history, segment, outputs)
        finally:
            self._last_done = time.perf_counter()

    def close(self) -> None:
        """Stop the worker and the inference thread (pending callers get CancelledError)."""
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._worker is not None and not self._worker.done():
            return
        # A new event loop (a server restart, a test client): start afresh, forgetting the old loop's callers.
        self._loop, self._wakeup = loop, asyncio.Event()
        self._queue.clear()
        self._queued_rows = 0
        self._worker = loop.create_task(self._work(), name="dynamic-batcher")

    async def _work(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            if self.delay_s and self._in_company and self._queued_rows < self.max_batch_size:
                await asyncio.sleep(self.delay_s)
            batch = self._take()
            self._in_company = len(batch) > 1
            if not self._queue:
                self._wakeup.clear()
            if batch:
                await self._run_batch(batch)

    def _take(self) -> list[_Pending]:
        """The oldest requests that fit one batch: same sequence length, at most max_batch_size rows."""
        if not self._queue:
            return []
        width, rows, batch, skipped = self._queue[0].history.shape[1], 0, [], []
        while self._queue:
            pending = self._queue.popleft()
            if pending.history.shape[1] != width:
                skipped.append(pending)
                continue
            if rows + pending.rows > self.max_batch_size:
                skipped.append(pending)
                break
            batch.append(pending)
            rows += pending.rows
        self._queue.extendleft(reversed(skipped))
        self._queued_rows -= rows
        return batch

    async def _run_batch(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        outputs = tuple(dict.fromkeys(name for p in batch for name in p.outputs))
        history = batch[0].history if len(batch) == 1 else np.concatenate([p.history for p in batch])
        segment = batch[0].segment if len(batch) == 1 else np.concatenate([p.segment for p in batch])
        self.batch_rows.append(int(history.shape[0]))
        self._running = True
        try:
            arrays = await loop.run_in_executor(self._executor, self._run, history, segment, outputs)
        except Exception as exc:  # noqa: BLE001 - handed to the callers, never lost
            if len(batch) == 1:
                _settle(batch[0].future, error=exc)
                return
            logger.debug("batch of %d requests failed (%s); running them one by one", len(batch), exc)
            for pending in batch:
                await self._run_batch([pending])
            return
        finally:
            self._running = False
            self._last_done = time.perf_counter()
        start = 0
        for pending in batch:
            stop = start + pending.rows
            by_name = dict(zip(outputs, arrays))
            _settle(pending.future, result=[by_name[name][start:stop] for name in pending.outputs])
            start = stop


def _settle(future: asyncio.Future, *, result: list[np.ndarray] | None = None,
            error: BaseException | None = None) -> None:
    if future.done():  # the caller went away (cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
