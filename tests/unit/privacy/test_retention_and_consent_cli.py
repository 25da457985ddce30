"""``hyperrec retention`` trims the feedback log to the window; ``hyperrec consent`` records pseudonyms
only."""

import json

from hyperrec.cli import main
from hyperrec.data.ledger import CONSENT_LEDGER, ConsentLedger
from hyperrec.online.feedback import FeedbackLog, read_feedback

DAY = 86_400


def test_retention_drops_old_feedback_records_atomically(tmp_path, capsys, pseudonym_key):
    with FeedbackLog(tmp_path / "feedback", rotate_bytes=200) as log:  # small segments: several files
        for day in range(10):
            log.append(
                [{"request_id": f"r{day}", "user": "a" * 32, "type": "click", "ts": 1_000_000 + day * DAY}]
            )
    now = 1_000_000 + 9 * DAY
    argv = [
        "retention",
        "--feedback",
        str(tmp_path / "feedback"),
        "--set",
        "privacy.retention_days=3",
        "--set",
        f"privacy.retention_now_unix={now}",
        "--set",
        f"output_dir={tmp_path / 'outputs' / 'latest'}",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records_dropped"] == 6 and summary["segments"] > 1
    assert [r["request_id"] for r in read_feedback(tmp_path / "feedback").records] == ["r6", "r7", "r8", "r9"]
    assert not list((tmp_path / "feedback").glob(".*.tmp"))


def test_retention_without_a_window_is_one_line_and_exit_2(tmp_path, capsys, pseudonym_key):
    assert (
        main(["retention", "--feedback", str(tmp_path), "--set", f"output_dir={tmp_path / 'o' / 'l'}"]) == 2
    )
    assert "privacy.retention_days is not set" in capsys.readouterr().err


def test_consent_is_recorded_by_pseudonym_and_the_latest_entry_wins(tmp_path, capsys, pseudonym_key):
    common = ["--set", f"output_dir={tmp_path / 'outputs' / 'latest'}"]
    assert main(["consent", "--user-id", "zed", "--withdraw", *common]) == 0
    ledger = ConsentLedger(tmp_path / "outputs" / "privacy" / CONSENT_LEDGER)
    assert len(ledger.withdrawn()) == 1 and "zed" not in ledger.path.read_text()
    assert main(["consent", "--user-id", "zed", "--grant", *common]) == 0
    assert ledger.withdrawn() == set()
