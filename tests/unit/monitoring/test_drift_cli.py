"""`hyperrec drift`: one-shot, windows from one file, --watch bounded by --max-checks, --trigger."""

import argparse
import json
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from monitoring_helpers import KFP_UPLOADED, START, synthetic_events

from hyperrec.errors import ConfigError, DataError
from hyperrec.monitoring.launchers import KfpLauncher
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.monitoring.trigger import MonitoringError, RetrainTrigger
from hyperrec.pipelines.drift_cli import add_monitoring_commands, run_drift_command

DAY = 86400


def parse(*argv):
    parser = argparse.ArgumentParser(prog="hyperrec")
    add_monitoring_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["drift", *argv])


@pytest.fixture(scope="module")
def events_file(tmp_path_factory):
    """One file, two periods: days 0-27 as generated, days 100-127 with longer dwell times."""
    folder = tmp_path_factory.mktemp("events")
    early = synthetic_events(200, seed=1)
    late = synthetic_events(200, seed=2, start=START + 100 * DAY, dwell_scale=1.6)
    path = folder / "events.csv"
    pd.concat([early, late], ignore_index=True).to_csv(path, index=False)
    return path


def test_one_shot_with_windows_cut_from_one_file(events_file, tmp_path, capsys):
    args = parse(
        "--reference",
        str(events_file),
        "--reference-end",
        str(START + 50 * DAY),
        "--current",
        str(events_file),
        "--current-start",
        "2024-02-01",
        "--output-dir",
        str(tmp_path),
    )
    assert args.handler is run_drift_command
    assert run_drift_command(args) == 1
    out = capsys.readouterr().out
    assert "drift detected: yes (dwell_seconds)" in out
    summary = json.loads((tmp_path / "drift_summary.json").read_text())
    assert summary["windows"]["reference"]["last_event"] < "2024-01-01"
    assert summary["windows"]["current"]["first_event"] >= "2024-02-01"
    assert (tmp_path / "drift_report.html").stat().st_size > 10_000


def test_current_days_keeps_the_newest_events(events_file, tmp_path):
    args = parse("--reference", str(events_file), "--current", str(events_file), "--current-days", "10",
                 "--output-dir", str(tmp_path))
    run_drift_command(args)
    current = json.loads((tmp_path / "drift_summary.json").read_text())["windows"]["current"]
    assert current["end_unix"] - current["start_unix"] <= 10 * DAY


def test_watch_with_trigger_checks_max_checks_times_and_logs_every_decision(events_file, tmp_path, capsys,
                                                                           kfp_client, s3):
    cfg = MonitoringConfig.model_validate(
        {"trigger": {"kfp": KFP_UPLOADED, "decision_log": str(tmp_path / "d.jsonl")}})
    client = kfp_client()
    trigger = RetrainTrigger(cfg, KfpLauncher(client, cfg.trigger.kfp))
    sleeps = []
    args = parse(
        "--reference",
        str(events_file),
        "--reference-end",
        str(START + 50 * DAY),
        "--current",
        str(events_file),
        "--current-start",
        str(START + 90 * DAY),
        "--output-dir",
        str(tmp_path),
        "--watch",
        "--interval",
        "7",
        "--max-checks",
        "3",
        "--trigger",
    )
    assert run_drift_command(args, trigger=trigger, sleep=sleeps.append) == 3
    assert sleeps == [7.0, 7.0]
    decisions = [json.loads(line)["decision"] for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert decisions == ["triggered", "skipped", "skipped"]  # then cool-down
    assert len(client.runs) == 1
    assert capsys.readouterr().out.count("retraining: ") == 3


def test_one_shot_trigger_failure_is_an_error(events_file, tmp_path, kfp_client, s3):
    cfg = MonitoringConfig.model_validate(
        {"trigger": {"kfp": KFP_UPLOADED, "decision_log": str(tmp_path / "d.jsonl"), "max_attempts": 2}})
    trigger = RetrainTrigger(cfg, KfpLauncher(kfp_client(fail_runs=5), cfg.trigger.kfp), sleep=lambda s: None)
    args = parse("--reference", str(events_file), "--reference-end", str(START + 50 * DAY),
                 "--current", str(events_file), "--current-start", str(START + 90 * DAY),
                 "--output-dir", str(tmp_path), "--trigger")
    with pytest.raises(MonitoringError, match="failed"):
        run_drift_command(args, trigger=trigger)
    decision = json.loads((tmp_path / "d.jsonl").read_text())
    assert decision["decision"] == "failed" and "KFP API server unreachable" in decision["errors"][-1]


def test_reference_comes_from_the_command_line_or_the_config(events_file, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no reference window"):
        run_drift_command(parse("--current", str(events_file), "--output-dir", str(tmp_path)))
    with pytest.raises(SystemExit):
        parse("--prepared", "a", "--reference", "b", "--current", "c")
    config = tmp_path / "config.yaml"
    config.write_text(f"monitoring:\n  sources:\n    reference: {events_file}\n")
    monkeypatch.setattr("hyperrec.pipelines.drift_cli.config_from_args", lambda args: SimpleNamespace(
        monitoring=MonitoringConfig.model_validate(yaml.safe_load(config.read_text())["monitoring"])))
    args = parse("--config", str(config), "--current", str(events_file), "--output-dir", str(tmp_path))
    assert run_drift_command(args) == 1
    summary = json.loads((tmp_path / "drift_summary.json").read_text())
    assert summary["windows"]["reference"]["source"] == str(events_file)


def test_watch_survives_a_failing_check(events_file, tmp_path, capsys):
    args = parse("--reference", str(events_file), "--current", str(tmp_path / "not-there.jsonl"),
                 "--output-dir", str(tmp_path), "--watch", "--interval", "1", "--max-checks", "2")
    sleeps = []
    assert run_drift_command(args, sleep=sleeps.append) == 2
    assert capsys.readouterr().out.count("drift check failed") == 2 and sleeps == [1.0]
    with pytest.raises(DataError):
        run_drift_command(
            parse("--reference", str(events_file), "--current", str(tmp_path / "not-there.jsonl"))
        )
