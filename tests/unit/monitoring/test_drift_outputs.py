"""The two outputs of a monitor run: the Evidently HTML report and the JSON summary."""

import json

from monitoring_helpers import START, synthetic_events

from hyperrec.monitoring.drift import run_drift_check
from hyperrec.monitoring.results import EVIDENTLY_FILE, REPORT_FILE, SUMMARY_FILE
from hyperrec.monitoring.windows import Window


def test_html_report_and_json_summary_are_written(tmp_path):
    reference = Window.of("reference", synthetic_events(200, seed=1), "train.parquet", end=START + 40 * 86400)
    current = Window.of("current", synthetic_events(200, seed=2, dwell_scale=1.6), "feedback.jsonl")
    result = run_drift_check(reference, current, output_dir=tmp_path)

    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["drift_detected"] is True and summary["drifted_checks"] == ["dwell_seconds"]
    assert summary == json.loads(json.dumps(result.summary(), default=str))
    dwell = summary["checks"]["dwell_seconds"]
    assert dwell["drift"] is True and dwell["method"] == "wasserstein"
    assert dwell["score"] >= dwell["threshold"] == 0.2 and dwell["p_value"] <= dwell["alpha_per_check"]
    assert set(summary["checks"]) >= {
        "event_mix",
        "item_popularity",
        "user_activity",
        "item_embeddings",
        "ctr",
    }
    for window in summary["windows"].values():
        assert window["rows"] > 0 and window["users"] == 200
        assert window["first_event"] <= window["last_event"]
        assert window["start_unix"] < window["end_unix"]
    assert summary["windows"]["reference"]["source"] == "train.parquet"
    assert summary["windows"]["reference"]["requested_end"].startswith("2023-12-24")
    assert summary["settings"]["checks_run"] == 5  # the five interaction checks had data
    assert summary["quality"]["status"] == "not_applicable"

    html = (tmp_path / REPORT_FILE).read_text()
    assert html.lstrip().lower().startswith("<html") or "<!doctype" in html[:200].lower()
    for text in ("Drift summary", "dwell_seconds", "Interaction features", "Wasserstein"):
        assert text in html

    evidently = json.loads((tmp_path / EVIDENTLY_FILE).read_text())
    names = [m["metric_name"] for m in evidently["events"]["metrics"]]
    assert any("ValueDrift(column=dwell_seconds" in n for n in names)
