"""``hyperrec forget`` erases a user from prepared data, line files, the feedback log and the bandit state,
taints the model versions that learned from them, and audits itself without naming them."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperrec.cli import main
from hyperrec.config import load_config
from hyperrec.data.ledger import ErasureLedger
from hyperrec.data.prep import run_data_prep
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.online.bandits.sqlite_store import SqliteStore
from hyperrec.online.bandits.state import StateDelta
from hyperrec.online.feedback import FeedbackLog, read_feedback
from hyperrec.privacy.taint import HELD_USER, TAINTED_TAG, UNKNOWN_DATA

FIXTURES = Path(__file__).parents[2] / "fixtures" / "generic"
KEY = "forget-test-key"
NAME = "hyperrec-ranker"


def pseudonym(raw: str) -> str:
    return Pseudonymizer(KEY.encode()).pseudonymize(raw)


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Outputs with two prepared-data folders (one holds u3; the other was prepared after the transformer's
    endpoint had put u3 in the erasure ledger), evaluation
    lines, a feedback log, bandit state, and three registered versions."""
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    overrides = [
        f"output_dir={tmp_path / 'outputs' / 'latest'}",
        "data.format=generic",
        f"data.items_path={FIXTURES / 'items.csv'}",
        f"data.interactions_path={FIXTURES / 'interactions.csv'}",
        f"serving.feedback_dir={tmp_path / 'feedback'}",
        f"bandit.store_url=sqlite:///{tmp_path / 'bandit' / 'state.sqlite'}",
    ]
    cfg = load_config(overrides=overrides, environ={})
    before = run_data_prep(cfg, cfg.output_dir / "data").root
    ErasureLedger.of(cfg).record([pseudonym("u3")])
    after = run_data_prep(cfg, tmp_path / "outputs" / "retrained" / "data").root
    recommendations = cfg.output_dir / "evaluation" / "als" / "recommendations.jsonl"
    recommendations.parent.mkdir(parents=True)
    recommendations.write_text("".join(json.dumps({"user_id": pseudonym(u), "items": ["sku-001"]}) + "\n"
                                       for u in ("u1", "u3", "u4")))
    with FeedbackLog(tmp_path / "feedback") as log:
        log.append(
            [
                {
                    "request_id": f"r{i}",
                    "user": pseudonym(u),
                    "type": "click",
                    "item_id": "sku-001",
                    "ts": 1.0,
                }
                for i, u in enumerate(("u3", "u4", "u3"))
            ]
        )
    store = SqliteStore(tmp_path / "bandit" / "state.sqlite")
    delta = StateDelta(updated_at=1.0)
    for key in (f"user:{pseudonym('u3')}:sku-001", f"user:{pseudonym('u4')}:sku-001", "item:sku-001"):
        delta.add_stat(key, 1.0, 1.0)
    delta.add_array("A", np.ones(4))
    store.add("hyperrec", delta)
    store.close()
    versions = register(cfg, [digest(before), "f" * 64, digest(after)])
    return cfg, overrides, versions


def digest(folder: Path) -> str:
    return hashlib.sha256((folder / "data_report.json").read_bytes()).hexdigest()


def register(cfg, digests):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cfg.mlflow_uri(), registry_uri=cfg.mlflow_uri())
    client.create_registered_model(NAME)
    versions = [
        client.create_model_version(NAME, "file:///nowhere", tags={"hyperrec.data_report_sha256": d}).version
        for d in digests
    ]
    client.set_registered_model_alias(NAME, "champion", versions[0])
    return client, versions


def test_forget_erases_the_user_everywhere_and_taints_what_learned_from_them(world, capsys):
    cfg, overrides, (client, versions) = world
    argv = ["forget", "--user-id", "u3", *(arg for o in overrides for arg in ("--set", o))]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    gone = pseudonym("u3")
    assert summary["residue"] == [] and summary["users"] == 1
    assert summary["feedback_lines_removed"] == 2 and summary["bandit_keys_removed"] == 1
    # prepared data, evaluation lines, feedback log: the user is gone, the others stay
    data = cfg.output_dir / "data"
    for table in ("interactions", "train", "examples", "profiles", "segments"):
        users = set(pd.read_parquet(data / f"{table}.parquet")["user_id"])
        assert gone not in users and pseudonym("u4") in users, table
    lines = (cfg.output_dir / "evaluation" / "als" / "recommendations.jsonl").read_text()
    assert gone not in lines and pseudonym("u4") in lines
    assert {r["user"] for r in read_feedback(cfg.serving.feedback_dir).records} == {pseudonym("u4")}
    # bandit: the user's own key went; other users' keys and the anonymous sums stay
    snapshot = SqliteStore(Path(cfg.bandit.store_url.removeprefix("sqlite:///"))).read(
        "hyperrec", [f"user:{gone}:sku-001", f"user:{pseudonym('u4')}:sku-001", "item:sku-001"], ["A"])
    assert (
        set(snapshot.stats) == {f"user:{pseudonym('u4')}:sku-001", "item:sku-001"} and "A" in snapshot.arrays
    )
    # registry: trained on the user → tainted; lineage unknown → tainted; trained without the user → clean
    tags = {v: client.get_model_version(NAME, v).tags for v in versions}
    assert (
        tags[versions[0]][TAINTED_TAG] == "true"
        and tags[versions[0]]["hyperrec.privacy.taint_reason"] == HELD_USER
    )
    assert tags[versions[1]]["hyperrec.privacy.taint_reason"] == UNKNOWN_DATA
    assert TAINTED_TAG not in tags[versions[2]]
    assert summary["aliases_on_tainted_versions"] == [
        {"name": NAME, "alias": "champion", "version": str(versions[0])}
    ]
    # the ledger holds pseudonyms only; the audit log names the command, never the raw id
    ledger = ErasureLedger.of(cfg)
    assert ledger.pseudonyms() == {gone} and "u3" not in ledger.path.read_text()
    audit = [json.loads(line) for line in (ledger.path.parent / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["command"] == "forget" and audit[-1]["user"]
    assert "u3" not in audit[-1]["args"] and "<redacted>" in audit[-1]["args"]


def test_a_batch_file_forgets_every_id_in_it(world, tmp_path, capsys):
    cfg, overrides, _ = world
    (tmp_path / "ids.txt").write_text("# erasure requests\nu3\n\nu4\n")
    assert (
        main(["forget", "--file", str(tmp_path / "ids.txt"), *(a for o in overrides for a in ("--set", o))])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["users"] == 2
    users = set(pd.read_parquet(cfg.output_dir / "data" / "interactions.parquet")["user_id"])
    assert not {pseudonym("u3"), pseudonym("u4")} & users


def test_a_missing_id_file_is_one_line_and_exit_2(world, tmp_path, capsys):
    _, overrides, _ = world
    assert (
        main(["forget", "--file", str(tmp_path / "nope.txt"), *(a for o in overrides for a in ("--set", o))])
        == 2
    )
    assert "nope.txt" in capsys.readouterr().err


def test_an_append_racing_the_rewrite_is_kept(tmp_path):
    """A writer that opened the segment before the erasure rewrote it appends to the new file, not the old."""
    from hyperrec.privacy.erase import forget_feedback

    log = FeedbackLog(tmp_path)
    log.append([{"user": "a" * 32, "type": "click"}, {"user": "b" * 32, "type": "click"}])
    old_inode = os.stat(log.path).st_ino
    assert forget_feedback(tmp_path, {"a" * 32}) == 1
    assert os.stat(log.path).st_ino != old_inode
    log.append([{"user": "c" * 32, "type": "click"}])
    log.close()
    assert [r["user"] for r in read_feedback(tmp_path).records] == ["b" * 32, "c" * 32]
