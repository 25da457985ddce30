"""The embedded predictor's dynamic batcher: concurrent requests share one run, each gets its own rows
back."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from hyperrec.serving.batcher import DynamicBatcher, QueueFull


class RecordingRun:
    """A model stand-in: output "double" = 2 * history, "sum" = row sums; records each batch it ran."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.gate = gate

    def __call__(self, history, segment, names):
        if self.gate is not None:
            self.gate.wait(timeout=10)
        if (segment < 0).any():
            raise ValueError("segment out of range")
        self.batches.append(int(history.shape[0]))
        outputs = {"double": history * 2, "sum": history.sum(axis=1, keepdims=True)}
        return [outputs[name] for name in names]


def rows(start: int, n: int, width: int = 3) -> np.ndarray:
    return np.arange(start, start + n * width, dtype=np.int64).reshape(n, width)


def test_concurrent_requests_are_merged_into_one_run_and_each_gets_its_own_rows():
    run = RecordingRun()
    batcher = DynamicBatcher(run, max_batch_size=16, max_queue_delay_us=20_000, max_queued_rows=100)

    async def main():
        histories = [rows(100 * i, n) for i, n in enumerate((1, 3, 2, 1))]
        results = await asyncio.gather(*(batcher.submit(h, np.zeros(len(h), np.int64), ["double", "sum"])
                                         for h in histories))
        return histories, results

    histories, results = asyncio.run(main())
    batcher.close()
    assert run.batches == [7]  # 1 + 3 + 2 + 1 rows in one inference
    for history, (double, total) in zip(histories, results):
        np.testing.assert_array_equal(double, history * 2)
        np.testing.assert_array_equal(total, history.sum(axis=1, keepdims=True))


def test_batches_never_exceed_max_batch_size_nor_mix_sequence_lengths():
    run = RecordingRun()
    batcher = DynamicBatcher(run, max_batch_size=4, max_queue_delay_us=20_000, max_queued_rows=100)

    async def main():
        calls = [batcher.submit(rows(0, 3), np.zeros(3, np.int64), ["sum"]),
                 batcher.submit(rows(0, 2, width=5), np.zeros(2, np.int64), ["sum"]),
                 batcher.submit(rows(0, 1), np.zeros(1, np.int64), ["sum"]),
                 batcher.submit(rows(0, 2), np.zeros(2, np.int64), ["sum"])]
        return await asyncio.gather(*calls)

    results = asyncio.run(main())
    batcher.close()
    assert sorted(run.batches) == [2, 2, 4] and max(run.batches) <= 4
    assert [r[0].shape for r in results] == [(3, 1), (2, 1), (1, 1), (2, 1)]
    with pytest.raises(ValueError, match="max_batch_size"):
        asyncio.run(batcher.submit(rows(0, 5), np.zeros(5, np.int64), ["sum"]))


def test_one_bad_request_fails_alone():
    run = RecordingRun()
    batcher = DynamicBatcher(run, max_batch_size=16, max_queue_delay_us=20_000, max_queued_rows=100)

    async def main():
        good = batcher.submit(rows(0, 2), np.zeros(2, np.int64), ["double"])
        bad = batcher.submit(rows(0, 1), np.array([-1]), ["double"])
        return await asyncio.gather(good, bad, return_exceptions=True)

    good, bad = asyncio.run(main())
    batcher.close()
    np.testing.assert_array_equal(good[0], rows(0, 2) * 2)
    assert isinstance(bad, ValueError) and "segment out of range" in str(bad)


def test_the_queue_is_bounded():
    gate = threading.Event()
    run = RecordingRun(gate)
    batcher = DynamicBatcher(run, max_batch_size=2, max_queue_delay_us=0, max_queued_rows=3)

    async def main():
        first = asyncio.ensure_future(batcher.submit(rows(0, 2), np.zeros(2, np.int64), ["sum"]))
        for _ in range(1000):  # until the worker has taken it into the (blocked) inference
            if batcher.batch_rows:
                break
            await asyncio.sleep(0.001)
        queued = [asyncio.ensure_future(batcher.submit(rows(0, 1), np.zeros(1, np.int64), ["sum"]))
                  for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(rows(0, 1), np.zeros(1, np.int64), ["sum"])
        gate.set()
        return await asyncio.gather(first, *queued)

    results = asyncio.run(main())
    batcher.close()
    assert len(results) == 4


def test_the_queue_delay_is_waited_only_while_requests_come_in_company(monkeypatch):
    """At concurrency 1 the delay could only add latency; once a batch merged several requests, the next
    first request waits for company again."""
    from hyperrec.serving import batcher as batcher_module

    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds):
        slept.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(batcher_module.asyncio, "sleep", recording_sleep)
    run = RecordingRun()
    batcher = DynamicBatcher(run, max_batch_size=16, max_queue_delay_us=2_000, max_queued_rows=100)
    segment = np.zeros(1, np.int64)

    async def main():
        for _ in range(3):  # one caller at a time
            await batcher.submit(rows(0, 1), segment, ["sum"])
        lone = list(slept)
        await asyncio.gather(*(batcher.submit(rows(0, 1), segment, ["sum"]) for _ in range(3)))
        await batcher.submit(rows(0, 1), segment, ["sum"])  # after a merged batch: waits for company
        return lone

    lone = asyncio.run(main())
    batcher.close()
    assert lone == []
    assert run.batches == [1, 1, 1, 3, 1]
    assert slept == [0.002]


def test_a_lone_request_on_an_idle_batcher_runs_inline_and_one_right_behind_another_is_queued(monkeypatch):
    """Concurrency 1 skips the hand-over to the inference thread; a request that follows a run within the
    gap (load) goes through the queue, where batches form. The batcher's clock is a fake the test moves."""
    from hyperrec.serving import batcher as batcher_module

    now = [100.0]
    monkeypatch.setattr(batcher_module.time, "perf_counter", lambda: now[0])
    threads: list[str] = []
    run = RecordingRun()

    def recording_run(history, segment, names):
        threads.append(threading.current_thread().name)
        return run(history, segment, names)

    batcher = DynamicBatcher(recording_run, max_batch_size=16, max_queue_delay_us=0, max_queued_rows=100,
                             lone_inline_gap_us=300)
    segment = np.zeros(1, np.int64)

    async def main():
        loop_thread = threading.current_thread().name
        (first,) = await batcher.submit(rows(0, 1), segment, ["sum"])  # idle since start: inline
        await batcher.submit(rows(0, 1), segment, ["sum"])  # no time has passed: right behind, queued
        await asyncio.gather(*(batcher.submit(rows(0, 1), segment, ["sum"]) for _ in range(3)))
        now[0] += 0.001  # idle for longer than the gap
        await batcher.submit(rows(0, 1), segment, ["sum"])
        now[0] += 1.0
        await batcher.submit(rows(0, 2), np.zeros(2, np.int64), ["sum"])  # two rows: always queued
        return loop_thread, first

    loop_thread, first = asyncio.run(main())
    batcher.close()
    np.testing.assert_array_equal(first, rows(0, 1).sum(axis=1, keepdims=True))
    assert threads[0] == loop_thread and threads[3] == loop_thread
    assert [name.startswith("onnx-infer") for name in threads] == [False, True, True, False, True]
    assert run.batches == [1, 1, 3, 1, 2]
