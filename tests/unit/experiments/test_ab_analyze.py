"""`hyperrec ab analyze` on a feedback log written by the real FeedbackLog."""

import json

import numpy as np
import pytest

from hyperrec.cli import main
from hyperrec.experiments.ab import AnalysisSpec, analyze, sample_ratio_mismatch, wilson_interval
from hyperrec.experiments.ctr import tally_feedback
from hyperrec.online.feedback import FeedbackLog, read_feedback


def write_log(directory, *, users=400, requests_per_user=5, ctr=(0.05, 0.08), challenger_share=0.5,
              sticky=True, seed=0):
    """Each request shows 10 items; clicks with the variant's CTR; the variant per user (sticky) or per
    request."""
    rng = np.random.default_rng(seed)
    records = []
    for u in range(users):
        user_variant = rng.random() < challenger_share
        for r in range(requests_per_user):
            challenger = user_variant if sticky else rng.random() < challenger_share
            variant = "challenger" if challenger else "champion"
            request_id = f"req-{u}-{r}"
            for i in range(10):
                base = {
                    "request_id": request_id,
                    "user": f"user-{u}",
                    "item_id": f"m{i}",
                    "value": None,
                    "ts": 1.0,
                    "received": 1.0,
                    "revision": variant,
                    "model_version": "2" if challenger else "1",
                }
                records.append({**base, "type": "impression"})
                if rng.random() < ctr[challenger]:
                    records.append({**base, "type": "click"})
    with FeedbackLog(directory) as log:
        log.append(records)
    return records


def test_counts_ctr_ci_and_verdict(tmp_path):
    records = write_log(tmp_path, users=2000, ctr=(0.05, 0.08))
    report = analyze(tally_feedback(read_feedback(tmp_path).records), AnalysisSpec())
    for name, challenger in (("champion", False), ("challenger", True)):
        mine = [r for r in records if (r["revision"] == "challenger") == challenger]
        shown = sum(r["type"] == "impression" for r in mine)
        clicked = sum(r["type"] == "click" for r in mine)
        variant = report["variants"][name]
        assert (variant["impressions"], variant["clicks"]) == (shown, clicked)
        assert variant["ctr"] == pytest.approx(clicked / shown)
        assert variant["ctr_ci"][0] < variant["ctr"] < variant["ctr_ci"][1]
    assert report["sequential"]["verdict"] == "better"
    assert report["srm"]["mismatch"] is False
    assert report["stickiness"]["sticky_share"] == 1.0


def test_sample_ratio_mismatch_is_flagged(tmp_path):
    write_log(tmp_path, users=2000, challenger_share=0.4)
    report = analyze(tally_feedback(read_feedback(tmp_path).records), AnalysisSpec(treatment_percent=50))
    assert report["srm"]["mismatch"] is True and report["srm"]["p_value"] < 0.001


def test_request_level_split_is_not_sticky(tmp_path):
    write_log(tmp_path, sticky=False)
    report = analyze(tally_feedback(read_feedback(tmp_path).records), AnalysisSpec())
    assert report["stickiness"]["sticky_share"] < 0.2  # 5 coin flips per user: 1/16 see one variant


def test_srm_and_wilson_by_hand():
    srm = sample_ratio_mismatch(5100, 4900, 50)
    assert srm["chi2"] == pytest.approx((100**2 / 5000) * 2)  # sum (o - e)^2 / e
    low, high = wilson_interval(0, 100, 0.05)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.036994, abs=1e-5)


def test_clicks_never_shown_are_not_counted(tmp_path):
    base = {"user": "u", "item_id": "m1", "value": None, "ts": 1.0, "received": 1.0, "revision": "champion"}
    tally = tally_feedback([{**base, "request_id": "a", "type": "impression"},
                            {**base, "request_id": "b", "type": "click"}])
    assert tally.counts("champion").clicks == 0 and tally.unattributed_clicks == 1


def test_analyze_cli(tmp_path, capsys):
    write_log(tmp_path)
    assert main(["ab", "analyze", str(tmp_path), "--split", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"variants", "sequential", "srm", "stickiness"}


def test_analyze_cli_missing_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["ab", "analyze", str(tmp_path / "nope")]) == 2
    assert "no feedback folder" in capsys.readouterr().err
