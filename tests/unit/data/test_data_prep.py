"""run_data_prep end to end on the small fixtures: the documented folder, privacy, and the report."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperrec.config import DataConfig, HyperrecConfig, PrivacyConfig
from hyperrec.data import prepared
from hyperrec.data.prep import STEPS, run_data_prep
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.errors import DataError

FIXTURES = Path(__file__).parents[2] / "fixtures"
KEY = "prep-test-key"
PLANTED_PII = ("alice.smith", "example.com", "415-555-0132", "555-0132", "020 7946 0958", "7946")
LAYOUT = {"items.parquet", "interactions.parquet", "train.parquet", "validation.parquet", "test.parquet",
          "segments.parquet", "examples.parquet", "profiles.parquet", "quarantine.jsonl", "data_report.json",
          "data_report.md"}


class _Lines(logging.Handler):
    """Keeps every formatted log line, including DEBUG from every library."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _config(tmp: Path, **data) -> HyperrecConfig:
    data = data or {"dataset_dir": FIXTURES / "movielens_tiny"}
    return HyperrecConfig(data=DataConfig(download=False, **data),
                          privacy=PrivacyConfig(pseudonym_key_file=tmp / "never-written.key"))


def _generic(tmp: Path, interactions: Path | None = None) -> HyperrecConfig:
    return _config(tmp, format="generic", items_path=FIXTURES / "generic" / "items.csv",
                   interactions_path=interactions or FIXTURES / "generic" / "interactions.csv")


def _run_logged(cfg: HyperrecConfig, out: Path) -> tuple[prepared.PreparedData, list[str]]:
    handler, root = _Lines(), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        data = run_data_prep(cfg, out)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return data, handler.lines


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One run on tests/fixtures/movielens_tiny, with every log line kept."""
    tmp = tmp_path_factory.mktemp("prep")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYPERREC_PSEUDONYM_KEY", KEY)
        data, lines = _run_logged(_config(tmp), tmp / "prepared")
    return data, lines


def _everything_written(folder: Path) -> str:
    """Every output file as text: Parquet tables decoded (they are compressed on disk), the rest as is."""
    parts = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".parquet":
            parts.append(pd.read_parquet(path).to_json(orient="records", force_ascii=False))
        else:
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_every_file_of_the_documented_layout_is_written(tiny):
    data, _ = tiny
    assert {p.name for p in data.root.iterdir()} == LAYOUT


def test_the_catalogue_is_every_movie_in_file_order_including_never_rated_ones(tiny):
    data, _ = tiny
    movies = pd.read_csv(FIXTURES / "movielens_tiny" / "movies.csv", dtype=str)
    rated = set(pd.read_csv(FIXTURES / "movielens_tiny" / "ratings.csv", dtype=str)["movieId"])
    assert data.items["item_id"].tolist() == movies["movieId"].tolist()
    assert data.items["item_idx"].tolist() == list(range(len(movies)))
    assert set(movies["movieId"]) - rated  # the fixture has movies nobody rated
    assert data.items["language"].notna().all()
    assert list(data.items["categories"].iloc[0]) == ["Adventure", "Animation", "Sci-Fi"]


def test_user_ids_are_keyed_pseudonyms_everywhere(tiny):
    data, _ = tiny
    raw = pd.read_csv(FIXTURES / "movielens_tiny" / "ratings.csv", dtype=str)["userId"].unique()
    expected = {Pseudonymizer(KEY.encode()).pseudonymize(u) for u in raw}
    for table in (data.interactions, data.split("train"), data.examples, data.profiles, data.segments):
        assert set(table["user_id"]) <= expected
    assert set(data.interactions["user_id"]) == expected


def test_interaction_columns_and_types_follow_the_contract(tiny):
    data, _ = tiny
    frame = data.interactions
    assert list(frame.columns) == ["user_id", "item_id", "item_idx", "event", "timestamp", "value",
                                   "dwell_seconds", "query", "label"]
    assert frame["item_idx"].dtype == np.int32 and frame["timestamp"].dtype == np.int64
    assert frame["label"].dtype == bool
    index = data.item_index
    assert (frame["item_id"].map(index) == frame["item_idx"]).all()


def test_leave_last_out_gives_each_user_one_validation_and_one_test_item_after_train(tiny):
    data, _ = tiny
    train, validation, test = (data.split(s) for s in prepared.SPLITS)
    assert len(validation) == len(test) == 30
    last_train = train.groupby("user_id")["timestamp"].max()
    assert (validation.set_index("user_id")["timestamp"] >= last_train.reindex(validation["user_id"])).all()
    assert (test.set_index("user_id")["timestamp"] >= validation.set_index("user_id")["timestamp"]).all()
    assert len(train) + len(validation) + len(test) == data.interactions["label"].sum()


def test_examples_profiles_and_segments_cover_every_train_user(tiny):
    data, _ = tiny
    train_users = set(data.split("train")["user_id"])
    assert len(data.examples) == len(data.split("train"))
    assert set(data.profiles["user_id"]) == train_users
    assert set(data.segments["user_id"]) == train_users
    assert data.profiles["profile"].map(lambda p: len(p.split())).max() <= 128
    assert len(data.histories(("train",))) == 30


def test_the_planted_duplicate_is_quarantined_with_its_file_row_and_reason(tiny):
    data, _ = tiny
    records = [json.loads(line) for line in (data.root / "quarantine.jsonl").read_text().splitlines()]
    assert [(r["file"], r["row"], r["reason"]) for r in records] == [("ratings.csv", 13, "duplicate")]


def test_planted_pii_appears_in_no_output_file_and_no_log_line(tiny):
    data, lines = tiny
    written, logged = _everything_written(data.root), "\n".join(lines)
    assert lines  # the run did log
    for planted in PLANTED_PII:
        assert planted not in written
        assert planted not in logged
    scrubbed = data.items.set_index("item_id").loc["108", "text"]
    assert "{{EMAIL}}" in scrubbed and "{{PHONE}}" in scrubbed
    assert KEY not in written and KEY not in logged


def test_the_report_counts_rows_per_step_quarantine_splits_and_segments(tiny):
    data, _ = tiny
    report = json.loads((data.root / "data_report.json").read_text())
    assert list(report["steps"]) == list(STEPS)
    assert report["steps"]["read"]["rows_in"] == 402
    assert report["steps"]["duplicates"] == {**report["steps"]["duplicates"], "rows_in": 402, "rows_out": 401}
    assert report["quarantine"] == {"total": 1, "by_reason": {"duplicate": 1}}
    assert report["split"]["method"] == "leave_last_out"
    assert 2 <= report["segments"]["k"] <= 8
    assert sum(report["segments"]["sizes"].values()) == 30
    assert sum(report["languages"].values()) == len(data.items)
    assert "| duplicates | 402 | 401 |" in (data.root / "data_report.md").read_text()


def test_generic_data_scrubs_queries_and_never_labels_searches(tmp_path, pseudonym_key, caplog):
    caplog.set_level(logging.DEBUG)
    data = run_data_prep(_generic(tmp_path), tmp_path / "out")
    searches = data.interactions[data.interactions["event"] == "search"]
    assert (searches["item_idx"] == -1).all() and not searches["label"].any()
    assert searches["query"].str.contains("{{PHONE}}", regex=False).sum() == 1
    assert "7946" not in _everything_written(data.root) and "7946" not in caplog.text
    assert data.profiles["profile"].str.contains("search: ", regex=False).any()


def test_a_rerun_writes_identical_tables(tmp_path, pseudonym_key):
    first = run_data_prep(_generic(tmp_path), tmp_path / "a")
    again = run_data_prep(_generic(tmp_path), tmp_path / "b")
    for name in ("interactions.parquet", "examples.parquet", "segments.parquet", "profiles.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(first.root / name), pd.read_parquet(again.root / name))


def test_without_timestamps_the_split_is_random_and_reported(tmp_path, pseudonym_key, caplog):
    frame = pd.read_csv(FIXTURES / "generic" / "interactions.csv", dtype=str).drop(columns="timestamp")
    frame.to_csv(tmp_path / "no_time.csv", index=False)
    data = run_data_prep(_generic(tmp_path, tmp_path / "no_time.csv"), tmp_path / "out")
    report = json.loads((data.root / "data_report.json").read_text())
    assert report["split"]["method"] == "random_leave_one_out"
    assert report["steps"]["bot_bursts"]["skipped_no_timestamps"] == 1
    assert "random leave-one-out" in caplog.text


def test_when_nothing_usable_remains_the_error_is_clear_and_the_quarantine_is_kept(tmp_path, pseudonym_key):
    (tmp_path / "bad.csv").write_text("user_id,item_id,event\nu1,sku-001,like\nu2,sku-002,poke\n")
    with pytest.raises(DataError, match="quarantine"):
        run_data_prep(_generic(tmp_path, tmp_path / "bad.csv"), tmp_path / "out")
    reasons = [
        json.loads(line)["reason"]
        for line in (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()
    ]
    assert reasons == ["unknown_event", "unknown_event"]


def test_a_time_window_keeps_only_its_events_and_counts_the_rest(tmp_path, pseudonym_key):
    ratings = pd.read_csv(FIXTURES / "movielens_tiny" / "ratings.csv")
    cutoff = int(ratings["timestamp"].median())
    cfg = _config(tmp_path, dataset_dir=FIXTURES / "movielens_tiny", window_start_unix=cutoff)
    data = run_data_prep(cfg, tmp_path / "windowed")
    assert data.interactions["timestamp"].min() >= cutoff
    window = json.loads((tmp_path / "windowed" / prepared.REPORT_JSON).read_text())["steps"]["window"]
    inside = int((ratings["timestamp"] >= cutoff).sum())
    assert window["rows_out"] == inside
    assert window["outside_window"] == len(ratings) - inside


def test_a_user_who_touched_every_item_is_quarantined_not_fatal(tmp_path, pseudonym_key, caplog):
    items = pd.read_csv(FIXTURES / "generic" / "items.csv", dtype=str)
    raw_id = "bulk.buyer@example.org"
    every_item = "".join(f"{raw_id},{item},click,{1_700_100_000 + 90 * n},,,\n"
                         for n, item in enumerate(items["item_id"]))
    interactions = tmp_path / "interactions.csv"
    interactions.write_text((FIXTURES / "generic" / "interactions.csv").read_text() + every_item)
    caplog.set_level(logging.DEBUG)
    data = run_data_prep(_generic(tmp_path, interactions), tmp_path / "out")
    pseudonym = Pseudonymizer(pseudonym_key.encode()).pseudonymize(raw_id)
    records = [json.loads(line) for line in (data.root / prepared.QUARANTINE_FILE).read_text().splitlines()]
    saturated = [r for r in records if r["reason"] == "touched_every_item"]
    assert len(saturated) == len(items)
    assert {(r["field"], r["values"]["user_id"]) for r in saturated} == {("user_id", pseudonym)}
    assert pseudonym not in set(data.interactions["user_id"])
    report = json.loads((data.root / prepared.REPORT_JSON).read_text())
    assert report["steps"]["saturated_users"]["users_dropped"] == 1
    assert raw_id not in _everything_written(data.root) and raw_id not in caplog.text


SCHEMELESS_URL = "example.net/profile/jdoe"


def test_scheme_less_urls_in_queries_and_item_text_become_the_url_placeholder(tmp_path, pseudonym_key):
    generic = FIXTURES / "generic"
    (tmp_path / "interactions.csv").write_text(
        (generic / "interactions.csv").read_text() + f"u1,,search,1700009999,,,teapots {SCHEMELESS_URL}\n")
    items = pd.read_csv(generic / "items.csv", dtype=str, keep_default_na=False)
    items.loc[0, "text"] = f"Find us at {SCHEMELESS_URL}."
    items.to_csv(tmp_path / "items.csv", index=False)
    cfg = _config(tmp_path, format="generic", items_path=tmp_path / "items.csv",
                  interactions_path=tmp_path / "interactions.csv")
    data = run_data_prep(cfg, tmp_path / "out")
    assert "teapots {{URL}}" in set(data.interactions["query"].dropna())
    assert data.items.loc[0, "text"] == "Find us at {{URL}}."
    written = _everything_written(data.root)
    assert "example.net" not in written and "jdoe" not in written


def test_scheme_less_urls_in_tags_become_the_url_placeholder(tmp_path, pseudonym_key):
    folder = tmp_path / "movielens"
    folder.mkdir()
    for name in ("movies.csv", "ratings.csv", "tags.csv"):
        (folder / name).write_text((FIXTURES / "movielens_tiny" / name).read_text())
    movie = pd.read_csv(folder / "movies.csv")["movieId"].iloc[0]
    with (folder / "tags.csv").open("a") as tags:
        tags.write(f"1,{movie},fan page {SCHEMELESS_URL},1481376176\n")
    data = run_data_prep(_config(tmp_path, dataset_dir=folder), tmp_path / "out")
    item_text = data.items.set_index("item_id").loc[str(movie), "text"]
    assert "fan page {{URL}}" in item_text
    written = _everything_written(data.root)
    assert "example.net" not in written and "jdoe" not in written
