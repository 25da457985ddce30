"""Served slates joined with clicks become training interactions that data prep reads, and an OPE log."""

import json

import pandas as pd
import pytest

from hyperrec.cli import main
from hyperrec.config import DataConfig
from hyperrec.data.labels import label_events
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import load_generic
from hyperrec.online.bandits.feedback import ServedItem
from hyperrec.online.bandits.ope import read_log
from hyperrec.online.feedback import FeedbackLog
from hyperrec.online.feedback_export import export_feedback
from hyperrec.online.feedback_join import bandit_impressions, join_feedback
from hyperrec.online.served import ServedAnswer

T0 = 1_700_000_000.0


def served(request_id, user, items, *, policy="ranker", candidates=None, ts=T0):
    features = (1.0, 0.5, 0.5, 0.0, 0.0) if candidates else ()
    return ServedAnswer(
        request_id=request_id, user=user, revision="champion", model_name="ranker", bundle_version="b1",
        model_version="3", policy=policy, candidates=candidates, ts=ts,
        items=tuple(ServedItem(request_id, policy, item, position, position, 0.9 if candidates else 1.0, 1, 4,
                               features, user) for position, item in enumerate(items)),
    )


def click(request_id, user, item, ts, **extra):
    return {"request_id": request_id, "user": user, "type": "click", "item_id": item, "value": None, "ts": ts,
            "received": ts, "revision": "champion", **extra}


@pytest.fixture
def feedback_dir(tmp_path):
    folder = tmp_path / "feedback"
    with FeedbackLog(folder) as log:
        log.append(served("r1", "p-a", ["i1", "i2", "i3"]).records())
        log.append(served("r2", "p-b", ["i2", "i4"], policy="epsilon_greedy", candidates=("i2", "i4", "i5"),
                          ts=T0 + 10).records())
        log.append([click("r1", "p-a", "i2", T0 + 5), click("r1", "p-a", "i2", T0 + 6),  # a double click
                    {**click("r1", "p-a", "i2", T0 + 7), "type": "dwell", "value": 42.0},
                    click("r2", "p-b", "i4", T0 + 12), click("gone", "p-c", "i9", T0 + 20)])
    return folder


def test_each_shown_item_is_clicked_or_a_negative_and_strays_are_counted(feedback_dir):
    from hyperrec.online.feedback import read_feedback

    joined = join_feedback(read_feedback(feedback_dir).records)
    outcome = {(s.request_id, s.item_id): (s.clicked, s.dwell_seconds) for s in joined.shown}
    assert outcome == {("r1", "i1"): (False, None), ("r1", "i2"): (True, 42.0), ("r1", "i3"): (False, None),
                       ("r2", "i2"): (False, None), ("r2", "i4"): (True, None)}
    assert [c["item_id"] for c in joined.unattributed_clicks] == ["i9"]
    impressions = bandit_impressions(joined)  # only bandit answers carry what the bandit learns from
    assert [(i.request_id, i.item_id, i.clicked, i.propensity) for i in impressions] == [
        ("r2", "i2", False, 0.9), ("r2", "i4", True, 0.9)]


def test_the_export_is_generic_interactions_that_data_prep_labels(feedback_dir, tmp_path):
    output, ope = tmp_path / "window" / "interactions.csv", tmp_path / "ope.jsonl"
    summary = export_feedback(feedback_dir, output, ope_log=ope)
    assert (summary["shown"], summary["clicked"], summary["unattributed_clicks"], summary["rows"]) == (
        5,
        2,
        1,
        6,
    )
    items = tmp_path / "items.csv"
    pd.DataFrame({"item_id": [f"i{n}" for n in range(1, 10)], "title": [f"Item {n}" for n in range(1, 10)]}
                 ).to_csv(items, index=False)
    data = DataConfig(format="generic", interactions_path=output, items_path=items)
    loaded = load_generic(data, Pseudonymizer(b"k"), quarantine := Quarantine())
    assert quarantine.records == [] and len(loaded.interactions) == 6
    labels = label_events(loaded.interactions, min_rating=None, min_dwell_seconds=10.0)
    by_item = loaded.interactions.assign(label=labels).groupby(["event", "label"]).size().to_dict()
    assert by_item == {
        ("click", True): 3,
        ("view", False): 3,
    }  # 2 joined clicks + 1 stray; 3 shown, not clicked
    (logged,) = read_log(ope)
    assert logged.candidates == ("i2", "i4", "i5") and [i.reward for i in logged.slate] == [0.0, 1.0]


def test_a_window_keeps_only_its_records(feedback_dir, tmp_path):
    summary = export_feedback(feedback_dir, tmp_path / "w.csv", since=T0 + 10)
    assert (summary["shown"], summary["clicked"]) == (2, 1)


def test_cli_export_prints_the_counts_and_bad_input_is_one_line_with_exit_2(feedback_dir, tmp_path, capsys):
    out = tmp_path / "i.parquet"
    assert main(["feedback", "export", "--feedback", str(feedback_dir), "--output", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["clicked"] == 2 and len(pd.read_parquet(out)) == 6
    assert (
        main(["feedback", "export", "--feedback", str(feedback_dir), "--output", str(tmp_path / "i.txt")])
        == 2
    )
    (feedback_dir / "feedback-000001.jsonl").open("a").write("{broken\n")
    assert main(["feedback", "export", "--feedback", str(feedback_dir), "--output", str(out)]) == 2


def test_exported_users_keep_their_pseudonyms_so_they_meet_their_own_past_ratings(tmp_path):
    """The log holds pseudonyms; data prep must not hash them again, or a retraining window that mixes raw
    ratings with exported feedback would split every user in two."""
    pseudonymizer = Pseudonymizer(b"k")
    alice = pseudonymizer.pseudonymize("alice")
    folder, output = tmp_path / "feedback", tmp_path / "feedback.csv"
    with FeedbackLog(folder) as log:
        log.append(served("r1", alice, ["i1", "i2"]).records())
        log.append([click("r1", alice, "i2", T0 + 5)])
    export_feedback(folder, output)
    ratings = pd.DataFrame({"user_id": ["alice"], "item_id": ["i3"], "event": ["rating"], "value": [5],
                            "timestamp": [int(T0) - 100]})
    window = tmp_path / "window.csv"
    pd.concat([ratings, pd.read_csv(output)]).to_csv(window, index=False)
    items = tmp_path / "items.csv"
    pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["One", "Two", "Three"]}).to_csv(items, index=False)
    data = DataConfig(format="generic", interactions_path=window, items_path=items)
    loaded = load_generic(data, pseudonymizer, Quarantine())
    assert set(loaded.interactions["user_id"]) == {alice}
    assert "alice" not in output.read_text()
