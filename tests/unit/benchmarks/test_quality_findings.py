"""The quality benchmark's findings lines, the data its caption names, and the run record both benchmarks
close with."""

from __future__ import annotations

from pathlib import Path

from hyperrec.benchmarks.quality import _findings, dataset_source
from hyperrec.benchmarks.stages import RunClock
from hyperrec.config import load_config


def _entry(difference: float, se: float, z: float, significant: bool = True) -> dict:
    return {"difference": difference, "se": se, "z": z, "significant": significant}


def test_findings_name_each_paired_difference_with_its_error_and_z() -> None:
    summary = {
        "best_baseline": {"full.ndcg@10": {"model": "bpr", "value": 0.0315}},
        "vs_best_baseline_paired": {
            "next_item_lm": {"other": "bpr", "full.ndcg@10": _entry(0.03, 0.008, 3.75)},
        },
        "fine_tuned_vs_zero_shot": {
            "every_fine_tuned_beats_zero_shot": {"full.ndcg@10": True},
            "per_model": {"next_item_lm": {"paired": {"full.ndcg@10": _entry(0.05, 0.01, 5.0)}}},
        },
        "next_item_lm_vs_next_item_id": {
            "beats": {"full.ndcg@10": False},
            "paired": {"full.hr@10": _entry(-0.01, 0.02, -0.5, False),
                       "full.ndcg@10": _entry(0.004, 0.002, 2.0)},
        },
    }
    assert _findings(summary) == [
        "best baseline on full.ndcg@10: bpr (0.0315)",
        "next_item_lm - bpr (best baseline), full NDCG@10 per user: +0.0300 ±0.0080 (z 3.8)",
        "every fine-tuned model beats zero-shot on full.ndcg@10: yes",
        "next_item_lm - zero_shot_lm, full NDCG@10 per user: +0.0500 ±0.0100 (z 5.0)",
        "next_item_lm beats next_item_id on full.ndcg@10: no",
        "next_item_lm - next_item_id, full.hr@10 per user: -0.0100 ±0.0200 (z -0.5; within noise at |z| >= 2"
        ")",
        "next_item_lm - next_item_id, full.ndcg@10 per user: +0.0040 ±0.0020 (z 2.0; significant at |z| >= 2"
        ")",
    ]
    assert _findings({}) == []


def test_run_clock_facts_close_the_record() -> None:
    facts = RunClock().facts(2, {"data_prep": 1.5})
    assert list(facts) == ["date", "machine", "threads", "stage_seconds", "load_average", "wall_seconds"]
    assert facts["threads"] == 2 and facts["stage_seconds"] == {"data_prep": 1.5}
    assert set(facts["load_average"]) == {"start", "end"} and facts["wall_seconds"] >= 0


def test_the_run_names_the_data_it_read_in_either_format(tmp_path: Path) -> None:
    movielens = load_config(overrides=[f"data.dataset_dir={tmp_path / 'ml'}"], environ={})
    assert dataset_source(movielens) == tmp_path / "ml"
    generic = load_config(overrides=["data.format=generic", f"data.interactions_path={tmp_path / 'i.csv'}",
                                     f"data.items_path={tmp_path / 'items.csv'}"], environ={})
    assert dataset_source(generic) == tmp_path / "i.csv"
