"""Event sources: the feedback-log adapter, interaction files, windows."""

import json

import numpy as np
import pandas as pd
import pytest

from hyperrec.errors import DataError
from hyperrec.monitoring.events import MONITOR_COLUMNS, feedback_records_to_frame, parse_time, read_events
from hyperrec.monitoring.settings import FeedbackSettings
from hyperrec.monitoring.windows import Window, last_days_bounds


def test_parse_time_accepts_seconds_milliseconds_and_iso():
    assert parse_time(1_072_915_200) == 1_072_915_200
    assert parse_time(1_072_915_200_000) == 1_072_915_200
    assert parse_time("1072915200") == 1_072_915_200
    assert parse_time("2004-01-01") == 1_072_915_200
    assert parse_time("2004-01-01T01:00:00+01:00") == 1_072_915_200
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_feedback_records_become_interaction_rows():
    records = [
        {
            "request_id": "r1",
            "user_id": "u1",
            "item_id": "i1",
            "event": "impression",
            "value": 0.7,
            "timestamp": 100,
        },
        {
            "request_id": "r1",
            "user_id": "u1",
            "item_id": "i1",
            "event": "click",
            "value": None,
            "timestamp": 101,
        },
        {
            "request_id": "r1",
            "user_id": "u1",
            "item_id": "i1",
            "event": "dwell",
            "value": 42.0,
            "timestamp": "1970-01-01T00:02:00Z",
        },
        {
            "request_id": "r1",
            "user_id": "u1",
            "item_id": "i2",
            "event": "dwell",
            "value": 3.0,
            "timestamp": 130,
        },
        {
            "request_id": "r2",
            "user_id": "u2",
            "item_id": "i2",
            "event": "RATING",
            "value": 2.5,
            "timestamp": 140_000,
        },
    ]
    frame, stats = feedback_records_to_frame(records, item_index={"i1": 0, "i2": 1},
                                             settings=FeedbackSettings(min_dwell_seconds=10, min_rating=3))
    assert list(frame.columns) == list(MONITOR_COLUMNS)
    assert stats.kept == 5 and stats.malformed == 0
    assert frame["event"].tolist() == ["impression", "click", "view", "view", "rating"]
    assert frame["item_idx"].tolist() == [0, 0, 0, 1, 1]
    assert frame["timestamp"].tolist() == [100, 101, 120, 130, 140_000]
    assert frame.loc[0, "value"] == pytest.approx(0.7)  # the impression keeps the model score
    assert frame["dwell_seconds"].iloc[2:4].tolist() == [42.0, 3.0]
    assert frame["label"].tolist() == [False, True, True, False, False]  # short dwell, low rating
    assert frame["request_id"].tolist() == ["r1", "r1", "r1", "r1", "r2"]


def test_bad_feedback_records_are_counted_and_skipped(tmp_path):
    path = tmp_path / "feedback.jsonl"
    good = {"request_id": "r", "user_id": "u", "item_id": "i", "event": "click", "value": 1, "timestamp": 5}
    lines = [
        json.dumps(good),
        json.dumps({**good, "event": "purchase"}),  # unknown event
        json.dumps({**good, "timestamp": "not a time"}),
        json.dumps({**good, "event": "rating", "value": None}),  # rating without a value
        "[1, 2]",
        json.dumps(good)[:25],  # the writer's half-written last line
    ]
    path.write_text("\n".join(lines) + "\n")
    frame = read_events(path)
    assert len(frame) == 1 and frame.loc[0, "event"] == "click"


def test_read_events_reads_tables_folders_and_prepared_data(tmp_path):
    frame = pd.DataFrame({
        "user_id": ["a", "b"], "item_id": ["x", "y"], "event": ["rating", "click"],
        "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02"]), "value": [4.0, 1.0],
    })
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    frame.to_parquet(prepared / "interactions.parquet")
    frame.iloc[:1].to_parquet(prepared / "train.parquet")
    pd.DataFrame({"item_id": ["x", "y"], "item_idx": [0, 1]}).to_parquet(prepared / "items.parquet")
    assert len(read_events(prepared)) == 2
    assert len(read_events(prepared, table="train")) == 1
    loaded = read_events(prepared / "interactions.parquet", item_index={"x": 0, "y": 1})
    assert loaded["item_idx"].tolist() == [0, 1]
    assert loaded["timestamp"].tolist() == [parse_time("2020-01-01"), parse_time("2020-01-02")]

    folder = tmp_path / "new"
    folder.mkdir()
    frame.to_csv(folder / "a.csv", index=False)
    (folder / "b.jsonl").write_text(json.dumps({"user_id": "c", "event": "view", "timestamp": 5}) + "\n")
    both = read_events(folder)
    assert len(both) == 3 and set(both["event"]) == {"rating", "click", "view"}

    ratings = tmp_path / "ratings.csv"  # MovieLens layout
    ratings.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n")
    movielens = read_events(ratings)
    assert movielens.loc[0, ["user_id", "item_id", "event", "value"]].tolist() == ["1", "31", "rating", 2.5]

    with pytest.raises(DataError):
        read_events(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="missing columns"):
        read_events_from = tmp_path / "bad.csv"
        pd.DataFrame({"user": [1]}).to_csv(read_events_from, index=False)
        read_events(read_events_from)


def test_windows_are_half_open_and_described():
    frame = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", None], "event": ["click"] * 3,
                          "timestamp": [100, 200, 300]})
    window = Window.of("current", frame, "test", start=100, end=300)
    assert window.frame["timestamp"].tolist() == [100, 200]
    info = window.describe()
    assert info["rows"] == 2 and info["users"] == 1 and info["start_unix"] == 100 and info["end_unix"] == 201
    assert info["first_event"] == "1970-01-01T00:01:40Z" and info["requested_end"] == "1970-01-01T00:05:00Z"
    start, end = last_days_bounds(pd.DataFrame({"timestamp": np.array([0, 86400 * 10])}), days=2)
    assert (start, end) == (86400 * 8 + 1, 86400 * 10 + 1)


def test_the_serving_feedback_log_is_read_with_its_own_reader(tmp_path):
    from hyperrec.online.feedback import FeedbackLog, parse_feedback

    folder = tmp_path / "feedback"
    with FeedbackLog(folder) as log:
        body = {"request_id": "req-1", "user_id": "u42", "events": [
            {"type": "impression", "item_id": "m1", "value": 0.8, "timestamp": 1_700_000_000},
            {"type": "click", "item_id": "m1", "timestamp": 1_700_000_005},
            {"type": "dwell", "item_id": "m1", "value": 31.5, "timestamp": 1_700_000_060},
            {"type": "rating", "item_id": "m1", "value": 4, "timestamp": 1_700_000_100},
        ]}
        log.append(parse_feedback(body, pseudonymize=lambda user: f"p-{user}", max_events=10))
        segment = log.path
    with segment.open("a") as handle:
        handle.write('{"request_id": "req-2", "user": "p-u7", "ty')  # a writer killed mid-line

    frame = read_events(folder, item_index={"m1": 3})
    assert frame["event"].tolist() == ["impression", "click", "view", "rating"]
    assert set(frame["user_id"]) == {"p-u42"} and set(frame["request_id"]) == {"req-1"}
    assert frame["timestamp"].tolist() == [1_700_000_000, 1_700_000_005, 1_700_000_060, 1_700_000_100]
    assert frame["item_idx"].tolist() == [3, 3, 3, 3]
    assert frame.loc[2, "dwell_seconds"] == 31.5 and frame.loc[3, "value"] == 4.0
