"""The served journal's writer: group commits of feedback (acknowledged only once on disk, kill -9 included)
and impressions batched within the write interval."""

import os
import signal
import subprocess
import sys
import threading
import time

from hyperrec.online.bandits.feedback import ServedItem
from hyperrec.online.feedback import FeedbackLog, read_feedback
from hyperrec.online.served import ServedAnswer, ServedJournal

#: Eight threads commit feedback (printing each acknowledged number) while a ninth records served answers.
GROUP_WRITER = """
import sys, threading, time
from hyperrec.online.bandits.feedback import ServedItem
from hyperrec.online.feedback import FeedbackLog
from hyperrec.online.served import ServedAnswer, ServedJournal
journal = ServedJournal(FeedbackLog(sys.argv[1], rotate_bytes=16384), cache_size=100, write_interval_s=0.01)
out = threading.Lock()

def feedback(worker):
    n = 0
    while True:
        journal.commit([{"request_id": f"w{worker}", "n": n, "pad": "x" * 100}]).result()
        with out:
            print(worker, n, flush=True)
        n += 1

def served():
    n = 0
    while True:
        item = ServedItem(f"s{n}", "ranker", "i1", 0, 0, 1.0, None, 1, ())
        journal.record(ServedAnswer(f"s{n}", "u", "champion", "ranker", "b1", None, "ranker", (item,), None,
                                    0.0))
        n += 1
        time.sleep(0.001)

for worker in range(8):
    threading.Thread(target=feedback, args=(worker,), daemon=True).start()
served()
"""


def answer(request_id: str) -> ServedAnswer:
    item = ServedItem(request_id, "ranker", "i1", 0, 0, 1.0, None, 1, ())
    return ServedAnswer(request_id, "p-u", "champion", "ranker", "b1", None, "ranker", (item,), None, 1.0)


class CountingLog(FeedbackLog):
    """A feedback log that counts its writes and can hold the first one until released."""

    def __init__(self, directory, hold_first: bool = False) -> None:
        super().__init__(directory)
        self.writes = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def write_encoded(self, data: bytes) -> None:
        self.entered.set()
        self.release.wait(30)
        if data:
            self.writes += 1
        super().write_encoded(data)


def test_concurrent_commits_share_one_write_and_are_acknowledged_after_it(tmp_path):
    log = CountingLog(tmp_path, hold_first=True)
    journal = ServedJournal(log, cache_size=10, write_interval_s=10.0)
    first = journal.commit([{"request_id": "r0", "type": "click"}])
    assert log.entered.wait(10)  # the writer is inside the first write
    waiting = [journal.commit([{"request_id": f"r{i}", "type": "click"}] * 2) for i in range(1, 21)]
    for i in range(5):
        journal.record(answer(f"s{i}"))
    assert not any(future.done() for future in waiting)  # nothing acknowledged before its write
    log.release.set()
    assert first.result(10) == 1 and [future.result(10) for future in waiting] == [2] * 20
    assert log.writes == 2  # the 20 waiting commits and the queued impressions went in one write + fsync
    journal.close()
    records = read_feedback(tmp_path).records
    assert len(records) == 1 + 40 + 5 and sum(r.get("type") == "impression" for r in records) == 5


def test_impressions_wait_at_most_the_write_interval(tmp_path):
    log = CountingLog(tmp_path)
    journal = ServedJournal(log, cache_size=10, write_interval_s=0.05)
    journal.record(answer("s0"))
    deadline = time.monotonic() + 10
    while not read_feedback(tmp_path).records and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r["request_id"] for r in read_feedback(tmp_path).records] == ["s0"]  # without flush or close
    slow = ServedJournal(CountingLog(tmp_path / "slow"), cache_size=10, write_interval_s=10.0)
    for i in range(50):
        slow.record(answer(f"s{i}"))
    slow.flush()
    assert slow.log.writes == 1  # the interval's answers in one write
    journal.close()
    slow.close()


def test_no_acknowledged_feedback_is_lost_when_the_process_is_killed(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", GROUP_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    acknowledged: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            worker, n = line.split()
            acknowledged.add((f"w{worker}", int(n)))
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdout.close()
    assert len(acknowledged) >= 300, "the writers did not get going"
    read = read_feedback(tmp_path)
    on_disk = [(r["request_id"], r["n"]) for r in read.records if "n" in r]
    assert acknowledged <= set(on_disk)  # every acknowledged event is on disk
    assert len(on_disk) == len(set(on_disk))  # and none twice
    assert any(r.get("type") == "impression" for r in read.records)  # served answers went in the same log
    assert read.corrupt == [] and len(read.torn) <= 1


def test_recent_answers_are_kept_out_of_the_garbage_collectors_walk(tmp_path):
    """50,000 cached answers as objects would be ~600,000 objects every full collection walks: a pause that
    grew with the cache and became the serving p99 (issue 11). Cached as plain tuples, the collector untracks
    them; lookups and clicks still see the same answers."""
    import gc

    journal = ServedJournal(FeedbackLog(tmp_path), cache_size=100, log_served=False)
    features = (1.0, 0.5, 3.0, 0.0, 0.0)
    items = tuple(ServedItem("r1", "ranker", f"i{k}", k, k, 1.0, 2, 8, features, "p-u") for k in range(10))
    served = ServedAnswer("r1", "p-u", "champion", "ranker", "b1", "3", "ranker", items, ("i0", "i1"), 1.0)
    journal.record(served)
    for _ in range(3):  # a collection untracks a tuple once its members are untracked: one pass per level
        gc.collect()
    assert not gc.is_tracked(journal._recent["r1"])
    assert journal.lookup("r1") == served
    assert journal.claim_click("r1", "i3") == items[3]
    assert journal.claim_click("r1", "i3") is None  # a click is claimed once
    assert journal.forget({"p-u"}) == 1 and journal.lookup("r1") is None
    journal.close()
