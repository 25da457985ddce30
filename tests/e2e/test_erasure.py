"""Erasure end to end, embedded: plant a user, train and register, serve them and log their feedback, forget
them (the transformer's endpoint, then ``hyperrec forget``), retrain. Afterwards no file under the outputs,
the MLflow database and artifacts, the feedback log, the bandit state or the served bundle copy holds the
user's pseudonym, except the erasure ledger, which exists to hold it; the version trained on the user is
tainted and the retrained, untainted one replaces it as champion.

Budgets: 3 epochs of the tiny next-item LM per training; a fixed number of requests.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from hyperrec.cli import main
from hyperrec.config import load_config
from hyperrec.data.ledger import ERASURE_LEDGER, state_dir
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.pipelines.runner import run_local
from hyperrec.privacy.taint import HELD_USER, TAINTED_TAG, tainted_aliases
from hyperrec.registry import BundleRegistry
from hyperrec.serving.local import LocalServers

pytestmark = [pytest.mark.slow, pytest.mark.local]

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "movielens_tiny"
NAME = "hyperrec-ranker"
KEY, TOKEN = "erasure-e2e-key", "erasure-e2e-token"
PLANTED = "planted-user-x"  # no hex digit run: a substring search for it cannot hit a pseudonym


def plant(tmp: Path) -> tuple[Path, list[str]]:
    """The tiny MovieLens copy plus one user who rated 12 movies; returns the folder and their items."""
    folder = tmp / "dataset"
    shutil.copytree(FIXTURE, folder)
    ratings = pd.read_csv(folder / "ratings.csv")
    items = [str(i) for i in pd.read_csv(folder / "movies.csv")["movieId"].head(12)]
    planted = pd.DataFrame(
        {
            "userId": PLANTED,
            "movieId": [int(i) for i in items],
            "rating": 4.5,
            "timestamp": [int(ratings["timestamp"].max()) - 3600 * (12 - n) for n in range(12)],
        }
    )
    pd.concat([ratings, planted], ignore_index=True).to_csv(folder / "ratings.csv", index=False)
    return folder, items


def overrides(tmp: Path, dataset: Path) -> list[str]:
    return [
        f"data.dataset_dir={dataset}",
        "data.download=false",
        f"output_dir={tmp / 'outputs' / 'latest'}",
        "prep.segments_k_max=3",
        "modeling.train=[next_item_lm]",
        "modeling.next_item.training.max_epochs=3",
        "modeling.next_item.max_seq_len=20",
        f"modeling.item_encoder.cache_dir={tmp / 'embeddings'}",
        f"serving.feedback_dir={tmp / 'feedback'}",
        "serving.predictor_http_port=0",
        "serving.predictor_grpc_port=0",
        "serving.transformer_http_port=0",
        "serving.request_timeout_s=5",
        "serving.attempt_timeout_s=5",
        "bandit.enabled=true",
        f"bandit.store_url=sqlite:///{tmp / 'bandit' / 'state.sqlite'}",
    ]


def post(url: str, body: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def registered_version(registry: BundleRegistry, output_dir: Path, pipeline_run: str) -> str:
    """The version the pipeline registered, or (offline gate refused: not what is under test) force it."""
    registration = json.loads((output_dir / "registration.json").read_text())
    if registration.get("registered"):
        return str(registration["registered"]["version"])
    from hyperrec.registry.gate import GateDecision

    info = registry.register_bundle(output_dir / "bundle", registered_name=NAME, training_run_id=None,
                                    decision=GateDecision.from_dict(registration["decision"]),
                                    pipeline_run=pipeline_run, force=True)
    return str(info.version)


def holders(roots: list[Path], pseudonym: str) -> set[Path]:
    """Every file under ``roots`` whose bytes, or whose Parquet cells, contain the pseudonym."""
    found = set()
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix == ".parquet":
                frame = pd.read_parquet(path)
                hit = any(
                    frame[c].astype(str).str.contains(pseudonym, regex=False).any() for c in frame.columns
                )
            else:
                hit = pseudonym.encode() in path.read_bytes()
            if hit:
                found.add(path)
    return found


def serve_planted_user(endpoints, items: list[str]) -> None:
    for i, user in enumerate([PLANTED, "1", PLANTED, "2"]):
        answer = post(endpoints.recommend_url, {"user_id": user, "history": items[:6], "k": 5,
                                                "request_id": f"req-{i}"})
        shown = answer["recommendations"][0]["item_id"]
        post(endpoints.feedback_url, {"request_id": answer["request_id"], "user_id": user,
                                      "events": [{"type": "click", "item_id": shown}]})


def test_a_forgotten_user_leaves_no_trace_and_their_model_is_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", KEY)
    monkeypatch.setenv("HYPERREC_ERASURE_TOKEN", TOKEN)
    dataset, items = plant(tmp_path)
    sets = overrides(tmp_path, dataset)
    cfg = load_config(overrides=sets, environ={})
    pseudonym = Pseudonymizer(KEY.encode()).pseudonymize(PLANTED)

    # 1. train on data holding the user; register; champion
    run = run_local(cfg)
    registry = BundleRegistry.from_target(cfg)
    v1 = registered_version(registry, run.output_dir, run.pipeline_run)
    registry.promote(NAME, v1)
    served = registry.download_bundle(NAME, "champion", tmp_path / "serve" / "v1")
    roots = [tmp_path / "outputs", tmp_path / "feedback", tmp_path / "bandit", tmp_path / "serve"]
    assert holders([tmp_path / "outputs"], pseudonym), "the planted user must be in the trained outputs"

    # 2. serve the user; their answers and clicks reach the feedback log and the bandit state
    serving = cfg.serving.model_copy(update={"registered_version": v1})
    with LocalServers(served, serving, overrides=sets, log_dir=tmp_path / "logs") as endpoints:
        serve_planted_user(endpoints, items)
        base = endpoints.transformer_http
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(f"{base}/hyperrec/forget", {"user_ids": [PLANTED]}, {"Authorization": "Bearer wrong"})
        assert refused.value.code == 401
        assert holders([tmp_path / "feedback"], pseudonym)
        # 3a. the transformer forgets the user in what it holds (it writes its queued answers first)
        counts = post(
            f"{base}/hyperrec/forget", {"user_ids": [PLANTED]}, {"Authorization": f"Bearer {TOKEN}"}
        )
        assert counts["feedback_lines"] > 0 and counts["cached_answers"] == 2 and counts["bandit_keys"] > 0
        assert not holders([tmp_path / "feedback", tmp_path / "bandit"], pseudonym)

    # 3b. hyperrec forget: prepared data, evaluations, bundles, MLflow artifacts; taints v1
    argv = ["forget", "--user-id", PLANTED, "--scan", str(tmp_path / "serve"),
            *(arg for item in sets for arg in ("--set", item))]
    capsys.readouterr()  # drop what the pipeline run printed
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["residue"] == [] and report["rows_removed"] > 0
    tags = registry.version(NAME, v1).tags
    assert tags[TAINTED_TAG] == "true" and tags["hyperrec.privacy.taint_reason"] == HELD_USER

    # 4. retrain: data prep reads the ledger, so the new model never sees the user
    retrained = run_local(cfg)
    report = json.loads((retrained.output_dir / "data" / "data_report.json").read_text())
    assert (
        report["steps"]["privacy"]["erased_users"] == 1 and report["steps"]["privacy"]["erased_events"] == 12
    )
    v2 = registered_version(registry, retrained.output_dir, retrained.pipeline_run)
    assert v2 != v1 and TAINTED_TAG not in registry.version(NAME, v2).tags
    registry.promote(NAME, v2)
    assert registry.aliases(NAME)["champion"] == v2
    assert {a["alias"] for a in tainted_aliases(cfg.mlflow_uri())} <= {"previous-champion"}

    # 5. grep everything: only the erasure ledger still holds the pseudonym
    ledger = state_dir(cfg) / ERASURE_LEDGER
    assert holders(roots, pseudonym) == {ledger}
    assert PLANTED not in ledger.read_text()
