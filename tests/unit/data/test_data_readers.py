"""Reading raw files: file-level problems raise DataError, row-level problems quarantine just that row."""

import json
from pathlib import Path

import pandas as pd
import pytest

from hyperrec.config import DataConfig
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import drop_unknown_items, load_generic, load_movielens, parse_timestamps
from hyperrec.errors import DataError

HEADER = "user_id,item_id,event,timestamp,value,dwell_seconds,query\n"
ITEMS = "item_id,title,text,categories\ni1,Teapot,Red and round,kitchen|home\ni2,Mug,,\n"
KEY = b"reader-test-key"


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _load(tmp_path: Path, interactions: str | bytes, items: str = ITEMS, name: str = "interactions.csv"):
    quarantine = Quarantine()
    cfg = DataConfig(format="generic", interactions_path=_write(tmp_path, name, interactions),
                     items_path=_write(tmp_path, "items.csv", items), download=False)
    loaded = load_generic(cfg, Pseudonymizer(KEY), quarantine)
    return loaded, quarantine


def _reasons(quarantine: Quarantine) -> list[tuple[int, str, str | None]]:
    return [(r["row"], r["reason"], r["field"]) for r in quarantine.records]


# --- file-level problems --------------------------------------------------------------------------------


def test_a_missing_required_column_names_file_and_field(tmp_path):
    with pytest.raises(DataError, match="'event'") as caught:
        _load(tmp_path, "user_id,item_id,timestamp\nu1,i1,1700000000\n")
    assert caught.value.field == "event"
    assert caught.value.file.endswith("interactions.csv")


def test_an_empty_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="empty") as caught:
        _load(tmp_path, "")
    assert caught.value.file.endswith("interactions.csv")


def test_a_header_without_rows_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        _load(tmp_path, HEADER)


def test_a_missing_file_is_a_data_error(tmp_path):
    cfg = DataConfig(format="generic", interactions_path=tmp_path / "nope.csv",
                     items_path=_write(tmp_path, "items.csv", ITEMS))
    with pytest.raises(DataError, match="not found") as caught:
        load_generic(cfg, Pseudonymizer(KEY), Quarantine())
    assert caught.value.file.endswith("nope.csv")


def test_an_unreadable_file_is_a_data_error(tmp_path):
    (tmp_path / "interactions.csv").mkdir()
    cfg = DataConfig(format="generic", interactions_path=tmp_path / "interactions.csv",
                     items_path=_write(tmp_path, "items.csv", ITEMS))
    with pytest.raises(DataError, match="cannot read"):
        load_generic(cfg, Pseudonymizer(KEY), Quarantine())


def test_a_corrupt_parquet_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="Parquet"):
        _load(tmp_path, b"not parquet at all", name="interactions.parquet")


def test_movielens_missing_ratings_file_is_a_data_error(tmp_path):
    _write(tmp_path, "movies.csv", "movieId,title,genres\n1,A (1999),Drama\n")
    with pytest.raises(DataError, match="not found") as caught:
        load_movielens(tmp_path, Pseudonymizer(KEY), Quarantine())
    assert caught.value.file.endswith("ratings.csv")


# --- row-level problems -----------------------------------------------------------------------------------


def test_row_numbers_are_file_line_numbers_with_the_header_as_line_1(tmp_path):
    loaded, _ = _load(tmp_path, HEADER + "u1,i1,click,1700000000,,,\n\nu2,i2,view,1700000001,,30,\n")
    assert loaded.interactions["_row"].tolist() == [2, 4]


def test_a_bad_timestamp_quarantines_its_row(tmp_path):
    loaded, quarantine = _load(tmp_path, HEADER + "u1,i1,click,yesterday,,,\nu1,i2,click,1700000000,,,\n")
    assert _reasons(quarantine) == [(2, "bad_timestamp", "timestamp")]
    assert loaded.interactions["item_id"].tolist() == ["i2"]


def test_millisecond_timestamps_are_rejected_rather_than_read_as_far_future(tmp_path):
    _, quarantine = _load(tmp_path, HEADER + "u1,i1,click,1700000000000,,,\nu1,i2,click,1700000000,,,\n")
    assert _reasons(quarantine) == [(2, "bad_timestamp", "timestamp")]


def test_a_non_utf8_line_quarantines_only_itself(tmp_path):
    content = (HEADER + "u1,i1,click,1700000000,,,\n").encode() + b"u2,i2,search,1700000001,,,caf\xe9\n" \
        + b"u3,i2,click,1700000002,,,\n"
    loaded, quarantine = _load(tmp_path, content)
    assert _reasons(quarantine) == [(3, "not_utf8", None)]
    assert quarantine.records[0]["values"] == {}
    assert loaded.interactions["_row"].tolist() == [2, 4]


def test_an_unknown_event_type_is_quarantined(tmp_path):
    _, quarantine = _load(tmp_path, HEADER + "u1,i1,like,1700000000,,,\nu1,i1,CLICK,1700000000,,,\n")
    assert _reasons(quarantine) == [(2, "unknown_event", "event")]


def test_a_non_numeric_rating_is_quarantined(tmp_path):
    _, quarantine = _load(
        tmp_path, HEADER + "u1,i1,rating,1700000000,five,,\nu1,i2,rating,1700000000,4.5,,\n"
    )
    assert _reasons(quarantine) == [(2, "bad_rating", "value")]


def test_a_row_with_the_wrong_number_of_fields_is_quarantined(tmp_path):
    _, quarantine = _load(tmp_path, HEADER + "u1,i1,click\nu1,i2,click,1700000000,,,\n")
    assert _reasons(quarantine) == [(2, "wrong_field_count", None)]


def test_item_id_may_be_empty_only_for_searches(tmp_path):
    loaded, quarantine = _load(tmp_path, HEADER + "u1,,search,1700000000,,,teapot\nu1,,click,1700000000,,,\n")
    assert _reasons(quarantine) == [(3, "missing_value", "item_id")]
    assert loaded.interactions["item_id"].isna().tolist() == [True]


def test_interactions_with_items_missing_from_the_items_file_are_quarantined(tmp_path):
    loaded, quarantine = _load(tmp_path, HEADER + "u1,i1,click,1700000000,,,\nu1,i9,click,1700000001,,,\n")
    kept = drop_unknown_items(loaded.interactions, loaded.items["item_id"], quarantine)
    assert _reasons(quarantine) == [(3, "unknown_item", "item_id")]
    assert kept["item_id"].tolist() == ["i1"]


def test_quarantine_records_hold_pseudonyms_and_no_free_text(tmp_path):
    _, quarantine = _load(tmp_path, HEADER + "alice,,search,not-a-time,,,my secret query\n"
                          "alice,i1,click,1700000000,,,\n")
    record = quarantine.records[0]
    assert record["values"]["user_id"] == Pseudonymizer(KEY).pseudonymize("alice")
    assert "query" not in record["values"]
    assert "alice" not in json.dumps(quarantine.records) and "secret" not in json.dumps(quarantine.records)


def test_duplicate_and_missing_item_ids_in_the_items_file_are_quarantined(tmp_path):
    items = "item_id,title\ni1,Teapot\ni1,Teapot again\n,Nameless\ni2,Mug\n"
    loaded, quarantine = _load(tmp_path, HEADER + "u1,i1,click,1700000000,,,\n", items=items)
    assert [(r["file"], r["row"], r["reason"]) for r in quarantine.records] == [
        ("items.csv", 4, "missing_value"), ("items.csv", 3, "duplicate_item")]
    assert loaded.items["title"].tolist() == ["Teapot", "Mug"]


# --- formats ----------------------------------------------------------------------------------------------


def test_iso_8601_and_unix_seconds_mean_the_same_instant():
    parsed = parse_timestamps(pd.Series(["2023-11-14T22:13:20Z", "1700000000", "2023-11-15T00:13:20+02:00"]))
    assert parsed.tolist() == [1700000000.0] * 3


def test_generic_csv_fixture_reads_every_event_type(fixtures_dir):
    cfg = DataConfig(format="generic", interactions_path=fixtures_dir / "generic" / "interactions.csv",
                     items_path=fixtures_dir / "generic" / "items.csv")
    quarantine = Quarantine()
    loaded = load_generic(cfg, Pseudonymizer(KEY), quarantine)
    assert quarantine.records == []
    assert set(loaded.interactions["event"]) == {"view", "click", "rating", "purchase", "search"}
    assert loaded.has_timestamps
    assert loaded.items["categories"].iloc[3] == ["kitchen", "decor"]


def test_jsonl_reads_like_the_same_rows_in_csv(fixtures_dir):
    generic = fixtures_dir / "generic"
    from_csv = load_generic(DataConfig(format="generic", interactions_path=generic / "interactions.csv",
                                       items_path=generic / "items.csv"), Pseudonymizer(KEY), Quarantine())
    from_jsonl = load_generic(DataConfig(format="generic", interactions_path=generic / "interactions.jsonl",
                                         items_path=generic / "items.csv"), Pseudonymizer(KEY), Quarantine())
    columns = ["user_id", "item_id", "event", "timestamp", "value", "dwell_seconds", "query"]
    expected = from_csv.interactions[columns].head(len(from_jsonl.interactions))
    pd.testing.assert_frame_equal(from_jsonl.interactions[columns], expected)


def test_a_broken_jsonl_line_is_quarantined(tmp_path):
    content = '{"user_id": "u1", "item_id": "i1", "event": "click"}\n{"user_id": \n[1, 2]\n'
    loaded, quarantine = _load(tmp_path, content, name="interactions.jsonl")
    assert _reasons(quarantine) == [(2, "bad_json", None), (3, "bad_json", None)]
    assert not loaded.has_timestamps


def test_parquet_with_typed_columns_reads_like_csv(tmp_path, fixtures_dir):
    generic = fixtures_dir / "generic"
    frame = pd.read_csv(generic / "interactions.csv", dtype=str)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].map(
        lambda t: int(t) if t.isdigit() else int(pd.Timestamp(t).timestamp())), unit="s", utc=True)
    frame["value"] = pd.to_numeric(frame["value"])
    frame.to_parquet(tmp_path / "interactions.parquet")
    items = pd.read_csv(generic / "items.csv", dtype=str)
    items["categories"] = items["categories"].fillna("").str.split("|").map(lambda c: [x for x in c if x])
    items.to_parquet(tmp_path / "items.parquet")
    cfg = DataConfig(format="generic", interactions_path=tmp_path / "interactions.parquet",
                     items_path=tmp_path / "items.parquet")
    from_parquet = load_generic(cfg, Pseudonymizer(KEY), Quarantine())
    from_csv = load_generic(DataConfig(format="generic", interactions_path=generic / "interactions.csv",
                                       items_path=generic / "items.csv"), Pseudonymizer(KEY), Quarantine())
    columns = ["user_id", "item_id", "event", "timestamp", "value", "query"]
    pd.testing.assert_frame_equal(from_parquet.interactions[columns], from_csv.interactions[columns])
    assert from_parquet.interactions["_row"].iloc[0] == 1  # Parquet: the record number, no header line
    assert from_parquet.items["categories"].tolist() == from_csv.items["categories"].tolist()


def test_movielens_tags_become_item_text_candidates_and_genres_categories(fixtures_dir):
    quarantine = Quarantine()
    loaded = load_movielens(fixtures_dir / "movielens_tiny", Pseudonymizer(KEY), quarantine)
    assert set(loaded.interactions["event"]) == {"rating"}
    assert len(loaded.tags) == 42 and "tag" in loaded.tags.columns
    untitled = loaded.items.set_index("item_id").loc["203"]
    assert untitled["categories"] == []  # "(no genres listed)"
    assert loaded.items["categories"].iloc[0] == ["Adventure", "Animation", "Sci-Fi"]
