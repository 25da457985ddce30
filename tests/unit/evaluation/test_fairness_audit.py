"""The fairness audit on a synthetic folder where group B is served worse and shown only long-tail items.

Two groups of 20 users with synthetic attributes (band A / B, as a users.csv with raw ids would give them):
A users find their test item at rank 1 (NDCG 1, HR 1); half the B users at rank 3 (NDCG 0.5), the other half
not at all, so B's mean NDCG@10 is 0.25 and its HR@10 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperrec.cli import main
from hyperrec.config import PrivacyConfig
from hyperrec.data.prepared import PreparedData
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.user_attributes import load_user_attributes
from hyperrec.errors import DataError
from hyperrec.evaluation.fairness import audit_evaluation
from hyperrec.evaluation.fairness_report import audit_html_section, audit_markdown
from hyperrec.fairness_settings import FairnessConfig, FairnessFloors
from hyperrec.registry.fairness_floors import check_floors
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.unit.evaluation.prepared_builder import item_id, write_prepared

RAW_A = [f"a{i}" for i in range(20)]
RAW_B = [f"b{i}" for i in range(20)]


def pseudonym(raw: str) -> str:
    return Pseudonymizer(TEST_PSEUDONYM_KEY.encode()).pseudonymize(raw)


@pytest.fixture
def folders(tmp_path: Path, pseudonym_key: str) -> tuple[PreparedData, Path, Path]:
    """(prepared data, evaluation folder, users.csv)."""
    train = {pseudonym(u): list(range(25)) for u in RAW_A} | {pseudonym(u): list(range(5)) for u in RAW_B}
    test = {pseudonym(u): [30] for u in RAW_A} | {pseudonym(u): [31] for u in RAW_B}
    data = write_prepared(tmp_path / "prepared", 40, train, test=test)
    users = sorted(train)
    pd.DataFrame(
        {"user_id": users, "segment": [0 if u in {pseudonym(r) for r in RAW_A} else 1 for u in users]}
    ).to_parquet(tmp_path / "prepared" / "segments.parquet", index=False)
    lists = {pseudonym(u): [30, *range(11)] for u in RAW_A}
    lists |= {pseudonym(u): [35, 36, 31, *range(20, 29)] for u in RAW_B[:10]}
    lists |= {pseudonym(u): [35, 36, 37, 38, 39, 32, 33, 34, 26, 27, 28, 29] for u in RAW_B[10:]}
    evaluation = tmp_path / "evaluation"
    (evaluation / "lm").mkdir(parents=True)
    with (evaluation / "lm" / "recommendations.jsonl").open("w") as handle:
        for user in users:
            handle.write(json.dumps({"user_id": user, "items": [item_id(i) for i in lists[user]]}) + "\n")
    (evaluation / "metrics.json").write_text(json.dumps({
        "split": "test", "protocol": {"top_n": 12, "history_splits": ["train", "validation"]},
        "models": {"lm": {}}}))
    users_csv = tmp_path / "users.csv"
    pd.DataFrame({"user_id": RAW_A + RAW_B, "band": ["A"] * 20 + ["B"] * 20}).to_csv(users_csv, index=False)
    return data, evaluation, users_csv


def audit_of(folders, **settings) -> dict:
    data, evaluation, users_csv = folders
    cfg = FairnessConfig(min_group_users=10, activity_new_below=20, **settings)
    attributes = load_user_attributes(users_csv, [], PrivacyConfig())
    return audit_evaluation(data, evaluation, cfg, attributes)


def test_quality_per_segment_activity_and_attribute_with_disparity_ratios(folders):
    entry = audit_of(folders)["models"]["lm"]
    segment = entry["groups"]["segment"]
    assert segment["groups"]["0"]["ndcg"] == pytest.approx(1.0)
    assert segment["groups"]["1"]["ndcg"] == pytest.approx(0.25)
    assert segment["groups"]["1"]["hr"] == pytest.approx(0.5)
    assert segment["groups"]["1"]["ndcg_se"] == pytest.approx(
        np.std([0.5] * 10 + [0] * 10, ddof=1) / np.sqrt(20)
    )
    assert (segment["worst"], segment["best"]) == ("1", "0")
    assert segment["ndcg_ratio"] == pytest.approx(0.25) and segment["hr_ratio"] == pytest.approx(0.5)
    activity = entry["groups"]["activity"]  # A: 25 history events (light), B: 5 (new)
    assert {label: group["n_users"] for label, group in activity["groups"].items()} == {
        "light": 20,
        "new": 20,
    }
    assert activity["ndcg_ratio"] == pytest.approx(0.25)
    band = entry["groups"]["attribute:band"]
    assert band["hr_ratio"] == pytest.approx(0.5)  # disparate impact: fails the four-fifths rule


def test_item_exposure_and_demographic_parity_of_exposure(folders):
    entry = audit_of(folders)["models"]["lm"]
    exposure = entry["exposure"]
    shown = {30, *range(10), 35, 36, 31, *range(20, 27), 37, 38, 39, 32, 33, 34, 26}
    assert exposure["coverage"] == pytest.approx(len(shown) / 40)
    assert sum(b["exposure_share"] for b in exposure["bins"]) == pytest.approx(1.0)
    parity = entry["parity"]["band"]
    # head = the 8 most popular items (0-7); A's top 10 is item 30 and items 0-8, B's is all tail
    assert parity["groups"]["A"]["long_tail_share"] == pytest.approx(0.2)
    assert parity["groups"]["B"]["long_tail_share"] == pytest.approx(1.0)
    assert parity["max_tv_distance"] > 0.3


def test_small_groups_are_reported_but_left_out_of_the_ratios(folders):
    data, evaluation, users_csv = folders
    audit = audit_evaluation(data, evaluation, FairnessConfig(min_group_users=25))
    segment = audit["models"]["lm"]["groups"]["segment"]
    assert segment["groups"]["1"]["n_users"] == 20 and not segment["groups"]["1"]["included"]
    assert segment["ndcg_ratio"] is None and segment["worst"] is None


def test_floors_name_what_fails(folders):
    audit = audit_of(folders)
    failures, notes = check_floors(
        audit,
        "lm",
        FairnessFloors(min_segment_ndcg_ratio=0.5, min_attribute_hr_ratio=0.8, max_exposure_gini=0.99),
    )
    assert len(failures) == 2 and not notes
    assert (
        "worst segment group '1' has NDCG@10 0.2500, 25.0% of the best group '0' (1.0000); the floor is 50%"
        in failures[0]
    )
    assert "attribute:band" in failures[1] and "HR@10 0.5000" in failures[1]
    failures, _ = check_floors(audit, "lm", FairnessFloors(min_segment_ndcg_ratio=0.2, min_coverage=0.9))
    assert len(failures) == 1 and "coverage@10" in failures[0]


def test_tables_and_html_section(folders):
    audit = audit_of(folders)
    markdown = audit_markdown(audit)
    assert "| lm      | 0.6250" in markdown  # overall NDCG@10: (20 * 1 + 20 * 0.25) / 40
    assert "0.250 (1 / 0)" in markdown and "band HR ratio (DI)" in markdown
    section = audit_html_section(audit)
    assert section.startswith('<section id="fairness-audit">') and "<table>" in section


def test_audit_command_writes_the_three_files(folders, tmp_path, capsys):
    data, evaluation, users_csv = folders
    code = main(["audit", "--evaluation", str(evaluation), "--prepared", str(data.root), "--users",
                 str(users_csv), "--set", "fairness.min_group_users=10", "--output", str(tmp_path / "out")])
    assert code == 0
    written = json.loads((tmp_path / "out" / "fairness.json").read_text())
    assert written["models"]["lm"]["groups"]["attribute:band"]["hr_ratio"] == pytest.approx(0.5)
    assert (tmp_path / "out" / "fairness.md").read_text() in capsys.readouterr().out
    assert "fairness-audit" in (tmp_path / "out" / "fairness.html").read_text()


def test_bad_input_is_one_line_naming_the_file(folders, tmp_path, capsys):
    data, evaluation, _ = folders
    assert main(["audit", "--evaluation", str(tmp_path / "nowhere"), "--prepared", str(data.root)]) == 2
    assert "nowhere/metrics.json" in capsys.readouterr().err
    bad_users = tmp_path / "bad.csv"
    bad_users.write_text("id,band\na0,A\n")
    with pytest.raises(DataError, match="field 'user_id'"):
        load_user_attributes(bad_users, [], PrivacyConfig())
    with pytest.raises(DataError, match="field 'age'"):
        load_user_attributes(folders[2], ["age"], PrivacyConfig())
