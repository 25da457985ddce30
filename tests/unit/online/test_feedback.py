"""The feedback log: validation, durability across a killed writer, torn tails, rotation."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hyperrec.online.errors import InvalidRequest
from hyperrec.online.feedback import FeedbackLog, parse_feedback, read_feedback

WRITER = """
import sys
from hyperrec.online.feedback import FeedbackLog
log = FeedbackLog(sys.argv[1], rotate_bytes=8192)
n = 0
while True:
    batch = [{"request_id": "r", "n": n + i, "pad": "x" * 200} for i in range(5)]
    log.append(batch)
    n += len(batch)
    print(n, flush=True)
"""


def pseudo(raw):
    return "p:" + raw


def test_feedback_bodies_become_records_keyed_by_request_id():
    records = parse_feedback(
        {
            "request_id": "req-1",
            "user_id": "u1",
            "events": [
                {"type": "impression", "item_id": "a"},
                {"type": "click", "item_id": 3, "timestamp": 1_700_000_000},
                {"type": "dwell", "item_id": "a", "value": 12.5},
                {"type": "rating", "item_id": "a", "value": 4},
            ],
        },
        pseudonymize=pseudo,
        max_events=10,
    )
    assert [r["type"] for r in records] == ["impression", "click", "dwell", "rating"]
    assert {r["request_id"] for r in records} == {"req-1"} and {r["user"] for r in records} == {"p:u1"}
    assert (
        records[1]["item_id"] == "3" and records[1]["ts"] == 1_700_000_000.0 and records[2]["value"] == 12.5
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user_id": "u", "events": [{"type": "click", "item_id": "a"}]}, "request_id is required"),
        ({"request_id": "r", "events": [{"type": "click", "item_id": "a"}]}, "user_id is required"),
        ({"request_id": "r", "user_id": "u", "events": []}, "non-empty list"),
        (
            {"request_id": "r", "user_id": "u", "events": [{"type": "like", "item_id": "a"}]},
            "type must be one of",
        ),
        ({"request_id": "r", "user_id": "u", "events": [{"type": "click"}]}, "item_id is required"),
        (
            {"request_id": "r", "user_id": "u", "events": [{"type": "dwell", "item_id": "a"}]},
            "dwell event needs",
        ),
        (
            {"request_id": "r", "user_id": "u", "events": [{"type": "rating", "item_id": "a"}]},
            "rating event needs",
        ),
        (
            {"request_id": "r", "user_id": "u", "events": [{"type": "click", "item_id": "a", "value": "x"}]},
            "finite number",
        ),
        ({"request_id": "r", "user_id": "u", "events": [{"type": "click", "item_id": "a"}] * 3}, "at most 2"),
        (
            {
                "request_id": "r",
                "user_id": "u",
                "events": [{"type": "click", "item_id": "a", "timestamp": -1}],
            },
            "Unix seconds",
        ),
    ],
)
def test_bad_feedback_is_rejected_with_a_clear_message(body, message):
    with pytest.raises(InvalidRequest, match=message):
        parse_feedback(body, pseudonymize=pseudo, max_events=2)


def test_append_is_durable_and_rotates_by_size(tmp_path):
    with FeedbackLog(tmp_path, rotate_bytes=1024) as log:
        for n in range(30):
            log.append([{"n": n, "pad": "y" * 100}])
    segments = sorted(p.name for p in tmp_path.iterdir())
    assert len(segments) > 2 and segments[0] == "feedback-000001.jsonl"
    read = read_feedback(tmp_path)
    assert [r["n"] for r in read.records] == list(range(30))
    assert read.torn == [] and read.corrupt == []


def test_a_torn_tail_is_skipped_reported_and_never_appended_to(tmp_path):
    (tmp_path / "feedback-000001.jsonl").write_text('{"n": 0}\n{"n": 1}\n{"n": 2, "pad": "tr')
    with FeedbackLog(tmp_path) as log:
        assert log.path.name == "feedback-000002.jsonl"
        log.append([{"n": 3}])
    read = read_feedback(tmp_path)
    assert [r["n"] for r in read.records] == [0, 1, 3]
    assert len(read.torn) == 1 and read.torn[0].file == "feedback-000001.jsonl" and read.torn[0].line == 3
    assert read.corrupt == []


def test_nothing_acknowledged_is_lost_when_the_writer_is_killed_mid_stream(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = 0
    deadline = time.monotonic() + 30
    try:
        while acknowledged < 400 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            acknowledged = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdout.close()
    assert acknowledged >= 400, "the writer did not get going"
    read = read_feedback(tmp_path)
    numbers = [r["n"] for r in read.records]
    assert set(range(acknowledged)) <= set(numbers)  # every acknowledged event is on disk
    assert numbers == list(range(len(numbers)))  # in order, no duplicates, no gaps
    assert read.corrupt == [] and len(read.torn) <= 1
    # A restarted writer goes on appending; everything stays readable.
    with FeedbackLog(tmp_path, rotate_bytes=8192) as log:
        log.append([{"request_id": "r", "n": len(numbers)}])
    again = read_feedback(tmp_path)
    assert [r["n"] for r in again.records] == list(range(len(numbers) + 1))
    assert again.corrupt == []
    json.dumps([vars(t) for t in again.torn])  # the report is plain data
