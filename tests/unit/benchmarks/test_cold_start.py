"""The cold-start benchmark on the tiny MovieLens fixture: the derived folder and the evaluated users."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperrec.benchmarks.cold_start import (
    COLD_MODELS,
    SELECTION_FILE,
    ColdStartSettings,
    run_cold_start,
    select_cold_items,
)
from hyperrec.cli import build_parser
from hyperrec.config import load_config
from hyperrec.data.prepared import SPLITS, PreparedData
from hyperrec.models.registry import BASELINES

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "movielens_tiny"
FRACTION, SEED = 0.2, 7


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cold")
    cfg = load_config(
        overrides=[
            f"data.dataset_dir={FIXTURE}", "data.download=false", f"output_dir={tmp / 'outputs' / 'latest'}",
            "prep.segments_k_max=3", "modeling.next_item.training.max_epochs=2",
            "modeling.next_item.max_seq_len=20", f"modeling.item_encoder.cache_dir={tmp / 'embeddings'}",
        ],
        environ={},
    )
    out = tmp / "bench"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HYPERREC_PSEUDONYM_KEY", "cold-start-test-key")
        metrics = run_cold_start(cfg, out, settings=ColdStartSettings(fraction=FRACTION, seed=SEED))
    return out, metrics


def _held_out(out: Path) -> np.ndarray:
    return np.array(json.loads((out / "cold_data" / SELECTION_FILE).read_text())["held_out_items"])


def test_the_draw_honours_fraction_and_seed(cold_run):
    out, _ = cold_run
    source = PreparedData(out / "data")
    candidates = np.unique(pd.concat([source.split(s)["item_idx"] for s in SPLITS]))
    held_out = _held_out(out)
    assert len(held_out) == round(FRACTION * len(candidates))
    assert set(held_out) <= set(candidates)
    np.testing.assert_array_equal(held_out, select_cold_items(source, FRACTION, SEED))
    np.testing.assert_array_equal(select_cold_items(source, FRACTION, SEED),
                                  select_cold_items(source, FRACTION, SEED))
    assert not np.array_equal(select_cold_items(source, FRACTION, SEED + 1), held_out)
    assert len(select_cold_items(source, 0.5, SEED)) == round(0.5 * len(candidates))
    selection = json.loads((out / "cold_data" / SELECTION_FILE).read_text())
    assert (selection["fraction"], selection["seed"]) == (FRACTION, SEED)


def test_held_out_items_have_no_training_events(cold_run):
    out, _ = cold_run
    held_out = _held_out(out)
    source, derived = PreparedData(out / "data"), PreparedData(out / "cold_data")
    for split in ("train", "validation"):
        frame = derived.split(split)
        assert not frame["item_idx"].isin(held_out).any(), split
        original = source.split(split)
        assert len(frame) == int((~original["item_idx"].isin(held_out)).sum()), split
    examples = derived.examples
    assert not examples["item_idx"].isin(held_out).any()
    assert not np.isin(np.concatenate(examples["negatives"].to_numpy()), held_out).any()
    cold_events = derived.interactions[derived.interactions["item_idx"].isin(held_out)]
    assert len(cold_events) == len(derived.split("test"))
    # the catalogue is unchanged: held-out items keep their row, index and text
    pd.testing.assert_frame_equal(derived.items, source.items)


def test_only_users_whose_test_target_is_held_out_are_evaluated(cold_run):
    out, metrics = cold_run
    held_out = _held_out(out)
    source_test = PreparedData(out / "data").split("test")
    expected = set(source_test.loc[source_test["item_idx"].isin(held_out), "user_id"])
    assert expected, "the fixture draw must give at least one cold test user"
    derived_test = PreparedData(out / "cold_data").split("test")
    assert set(derived_test["user_id"]) == expected
    assert derived_test["item_idx"].isin(held_out).all()
    assert metrics["protocol"]["n_users"] == len(expected) == metrics["cold_start"]["cold_test_users"]
    for name, entry in metrics["models"].items():
        assert entry["n_users"] == len(expected), name
        users = [json.loads(line)["user_id"]
                 for line in (out / "evaluation" / name / "recommendations.jsonl").read_text().splitlines()]
        assert set(users) == expected, name


def test_metrics_json_and_reports_are_written(cold_run):
    out, metrics = cold_run
    written = json.loads((out / "metrics.json").read_text())
    assert set(written["models"]) == {cls.name for cls in BASELINES} | set(COLD_MODELS)
    for entry in written["models"].values():
        for protocol in ("full", "sampled"):
            assert {"hr@10", "ndcg@10", "hr@10_se", "ndcg@10_se"} <= set(entry[protocol])
    block = written["cold_start"]
    assert block["fraction"] == FRACTION and block["seed"] == SEED
    assert block["cold_test_users"] >= 1 and block["cold_test_users_se"] >= 0
    assert block["training"]["next_item_lm"]["examples_per_second"] > 0
    table = (out / "metrics.md").read_text()
    assert "next_item_lm" in table and "held out" in table
    assert "<img" in (out / "report.html").read_text()


def test_one_bench_group_holds_serve_and_every_offline_benchmark():
    parser = build_parser()
    for argv in (["serve"], ["quality"], ["cold-start"], ["bandits"], ["scale"],
                 ["debian-dataset", "--output-dir", "x"]):
        args = parser.parse_args(["bench", *argv])
        assert args.bench_command == argv[0] and callable(args.handler)
    args = parser.parse_args(["bench", "cold-start", "--fraction", "0.2", "--set", "seed=3"])
    assert (args.fraction, args.overrides, args.output_dir) == (
        0.2,
        ["seed=3"],
        Path("outputs/bench/cold_start"),
    )
    args = parser.parse_args(["bench", "quality", "--with-encoders", "--output-dir", "x"])
    assert args.with_encoders and args.output_dir == Path("x")
