"""Data prep leaves out forgotten users, users without consent and expired events, and counts each."""

import json
from pathlib import Path

import pandas as pd
import pytest

from hyperrec.config import DataConfig, HyperrecConfig, PrivacyConfig
from hyperrec.data.ledger import ConsentLedger, ErasureLedger
from hyperrec.data.prep import run_data_prep
from hyperrec.data.pseudonymize import Pseudonymizer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "generic"
KEY = "privacy-prep-key"
DAY = 86_400


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", KEY)


def pseudonym(raw: str) -> str:
    return Pseudonymizer(KEY.encode()).pseudonymize(raw)


def config(tmp: Path, interactions: Path, **privacy) -> HyperrecConfig:
    return HyperrecConfig(
        output_dir=tmp / "outputs" / "latest",
        data=DataConfig(download=False, format="generic", items_path=FIXTURES / "items.csv",
                        interactions_path=interactions),
        privacy=PrivacyConfig(pseudonym_key_file=tmp / "never.key", **privacy),
    )


def users_in(folder: Path) -> set[str]:
    names = ("interactions", "train", "validation", "test", "examples", "profiles", "segments")
    return set().union(*(set(pd.read_parquet(folder / f"{n}.parquet")["user_id"]) for n in names))


def privacy_step(folder: Path) -> dict:
    return json.loads((folder / "data_report.json").read_text())["steps"]["privacy"]


def test_a_forgotten_user_never_reaches_the_prepared_data_and_is_counted(tmp_path):
    cfg = config(tmp_path, FIXTURES / "interactions.csv")
    ErasureLedger.of(cfg).record([pseudonym("u3")])
    out = run_data_prep(cfg, tmp_path / "data").root
    assert pseudonym("u3") not in users_in(out) and pseudonym("u4") in users_in(out)
    step = privacy_step(out)
    assert step["erased_users"] == 1 and step["erased_events"] == 10  # u3 has 10 rows in the fixture
    assert step["rows_in"] - step["rows_out"] == 10
    assert pseudonym("u3") not in (out / "quarantine.jsonl").read_text()


def test_the_consent_column_and_the_consent_ledger_each_exclude_a_user(tmp_path):
    frame = pd.read_csv(FIXTURES / "interactions.csv")
    frame["consent"] = [
        "no" if u == "u5" else ("yes" if i % 2 else "") for i, u in enumerate(frame["user_id"])
    ]
    frame.loc[frame.index[-1], "consent"] = "maybe"  # unreadable: that row is quarantined, not guessed
    path = tmp_path / "interactions.csv"
    frame.to_csv(path, index=False)
    cfg = config(tmp_path, path)
    ConsentLedger.of(cfg).record([pseudonym("u6")], consent=False)
    ConsentLedger.of(cfg).record([pseudonym("u7")], consent=False)
    ConsentLedger.of(cfg).record([pseudonym("u7")], consent=True)  # the latest entry wins
    out = run_data_prep(cfg, tmp_path / "data").root
    users = users_in(out)
    assert pseudonym("u5") not in users and pseudonym("u6") not in users and pseudonym("u7") in users
    step = privacy_step(out)
    assert step["no_consent_users"] == 2 and step["no_consent_events"] == 8 + 10
    quarantined = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [q["reason"] for q in quarantined if q["field"] == "consent"] == ["bad_consent"]
    assert "consent" not in pd.read_parquet(out / "interactions.parquet").columns


def test_the_retention_window_drops_old_events_and_counts_them(tmp_path):
    frame = pd.read_csv(FIXTURES / "interactions.csv")
    frame["timestamp"] = [1_700_000_000 + i * DAY for i in range(len(frame))]
    path = tmp_path / "interactions.csv"
    frame.to_csv(path, index=False)
    now = 1_700_000_000 + (len(frame) - 1) * DAY
    cfg = config(tmp_path, path, retention_days=40, retention_now_unix=now)
    out = run_data_prep(cfg, tmp_path / "data").root
    step = privacy_step(out)
    expected = int((frame["timestamp"] < now - 40 * DAY).sum())
    assert step["expired_events"] == expected > 0
    assert step["retention_cutoff_unix"] == now - 40 * DAY
    assert pd.read_parquet(out / "interactions.parquet")["timestamp"].min() >= now - 40 * DAY
