"""The whole online loop, embedded on one machine: train → champion → serve → feedback → retrain on the
feedback window → challenger → canary through an embedded split → controller decision through the real
Prometheus → MLflow aliases that agree with the decision.

Budgets are in epochs, requests and controller steps (no wall-clock budget): 3 epochs of the tiny next-item
LM per training, 40 requests per canary step, at most ``MAX_STEPS`` controller steps; every wait polls a
bounded number of times for a condition. Clicks are synthetic but not arbitrary: a simulated user clicks
a shown item that is one of their held-out ratings (the two latest), and otherwise the first item with a
seeded chance, the same rule for both revisions.
"""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from polling import poll
from prometheus_support import prometheus_binary, start_prometheus

from hyperrec.config import load_config
from hyperrec.experiments.decisions import DecisionLog
from hyperrec.experiments.prometheus import PromQLClient
from hyperrec.experiments.service import canary_step
from hyperrec.online.feedback_export import export_feedback
from hyperrec.online.settings import SplitConfig
from hyperrec.pipelines.runner import run_local, run_retraining_local
from hyperrec.registry import BundleRegistry
from hyperrec.serving.local import LocalServers

pytestmark = [pytest.mark.slow, pytest.mark.local]

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "movielens_tiny"
NAME = "hyperrec-ranker"
K, REQUESTS_PER_STEP, MAX_STEPS = 5, 40, 4



def config(tmp: Path, *extra: str):
    return load_config(overrides=[
        f"data.dataset_dir={FIXTURE}", "data.download=false", f"output_dir={tmp / 'outputs' / 'latest'}",
        "prep.segments_k_max=3", "modeling.train=[next_item_lm]", "modeling.next_item.training.max_epochs=3",
        "modeling.next_item.max_seq_len=20", f"modeling.item_encoder.cache_dir={tmp / 'embeddings'}",
        "monitoring.drift.disabled_checks=[item_embeddings, profile_embeddings]",
        f"serving.feedback_dir={tmp / 'feedback'}", "serving.predictor_http_port=0",
        "serving.predictor_grpc_port=0", "serving.transformer_http_port=0",
        "serving.request_timeout_s=5", "serving.attempt_timeout_s=5", *extra,
    ], environ={})


def users(ratings: pd.DataFrame) -> dict[str, tuple[list[str], set[str]]]:
    """Raw user id → (history oldest first, held-out latest two items)."""
    out = {}
    for user, rows in ratings.sort_values("timestamp").groupby("userId"):
        items = [str(i) for i in rows["movieId"]]
        out[str(user)] = (items[:-2], set(items[-2:]))
    return out


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def serve_and_click(endpoints, population, rng: random.Random, n: int, tag: str) -> dict[str, int]:
    """``n`` recommend requests and their synthetic clicks; requests per revision."""
    served: dict[str, int] = {}
    names = sorted(population)
    for i in range(n):
        user = names[i % len(names)]
        history, future = population[user]
        answer = post(endpoints.recommend_url, {"user_id": user, "history": history, "k": K,
                                                "request_id": f"{tag}-{i}"})
        served[answer["revision"]] = served.get(answer["revision"], 0) + 1
        shown = [r["item_id"] for r in answer["recommendations"]]
        clicks = [item for item in shown if item in future]
        if not clicks and shown and rng.random() < 0.3:
            clicks = [shown[0]]
        if clicks:
            post(endpoints.feedback_url, {"request_id": answer["request_id"], "user_id": user,
                                          "events": [{"type": "click", "item_id": item} for item in clicks]})
    return served


def registered_version(registry, run_registration: dict, bundle: Path, pipeline_run: str) -> str:
    """The version the pipeline registered; if its offline gate refused the model, the test registers it so
    that the canary (what is under test here) gets to judge it, and says so in the version's tags."""
    if run_registration.get("registered"):
        return str(run_registration["registered"]["version"])
    from hyperrec.registry.gate import GateDecision

    decision = GateDecision.from_dict(run_registration["decision"])
    info = registry.register_bundle(bundle, registered_name=NAME, decision=decision, training_run_id=None,
                                    pipeline_run=pipeline_run, force=True)
    registry.client.set_model_version_tag(NAME, info.version, "hyperrec.e2e.forced", "offline gate refused")
    return str(info.version)


@pytest.fixture
def prometheus_for(tmp_path):
    """Start the real Prometheus scraping one target's /metrics every second; yields a starter."""
    binary = prometheus_binary()
    started = []

    def start(target: str) -> PromQLClient:
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [
            {"job_name": "hyperrec-embedded", "static_configs": [{"targets": [target]}]}]}
        process, client, _ = start_prometheus(binary, tmp_path, config)
        started.append(process)
        poll(lambda: _up(client), "the embedded transformer scraped")
        return client

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=30)


def _up(client: PromQLClient) -> bool:
    try:
        return len(client.query('up{job="hyperrec-embedded"} == 1')) == 1
    except Exception:  # noqa: BLE001 - not listening yet
        return False


def test_served_clicked_retrained_canaried_and_decided(tmp_path, monkeypatch, prometheus_for):
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", "online-loop-key")
    rng = random.Random(11)
    population = users(pd.read_csv(FIXTURE / "ratings.csv"))
    timeline: list[str] = []

    # 1. train → register → champion
    cfg = config(tmp_path)
    run = run_local(cfg)
    registry = BundleRegistry.from_target(cfg)
    registration = json.loads((run.output_dir / "registration.json").read_text())
    v1 = registered_version(registry, registration, run.output_dir / "bundle", run.pipeline_run)
    registry.promote(NAME, v1)
    timeline.append(f"trained and registered v{v1}; promoted to champion")

    # 2. serve the registered champion; users click
    champion = registry.download_bundle(NAME, "champion", tmp_path / "serve" / "champion")
    serving = cfg.serving.model_copy(update={"registered_version": v1})
    with LocalServers(champion, serving, log_dir=tmp_path / "logs-1") as endpoints:
        served = serve_and_click(endpoints, population, rng, 3 * len(population), "live")
    assert served == {"champion": 3 * len(population)}

    # 3. feedback → the new window (the previous data plus what was served and clicked)
    window = tmp_path / "window"
    summary = export_feedback(cfg.serving.feedback_dir, window / "feedback.csv")
    assert summary["shown"] == K * 3 * len(population) and summary["clicked"] > 0
    timeline.append(f"feedback: {summary['shown']} shown, {summary['clicked']} clicked")
    ratings = pd.read_csv(FIXTURE / "ratings.csv").rename(columns={"userId": "user_id", "movieId": "item_id",
                                                                    "rating": "value"})
    previous = ratings.assign(event="rating")  # the feedback's dwell_seconds and query fill as missing
    pd.concat([previous, pd.read_csv(window / "feedback.csv")], ignore_index=True).to_csv(
        window / "interactions.csv", index=False)
    movies = pd.read_csv(FIXTURE / "movies.csv")
    movies.rename(columns={"movieId": "item_id", "genres": "categories"}).assign(text=None).to_csv(
        window / "items.csv", index=False)

    # 4. retrain on the window with the embedded retraining pipeline → challenger
    retrain_cfg = config(
        tmp_path,
        "data.format=generic",
        f"data.interactions_path={window / 'interactions.csv'}",
        f"data.items_path={window / 'items.csv'}",
        f"tracking.tracking_uri={cfg.mlflow_uri()}",
        f"output_dir={tmp_path / 'outputs' / 'retrained'}",
    )
    retrain_run = run_retraining_local(retrain_cfg, reference_uri=str(FIXTURE / "ratings.csv"),
                                       current_uri=str(window / "interactions.csv"), force_retrain=True,
                                       trigger_reason="e2e: feedback window")
    kfp_root = tmp_path / "outputs" / "kfp" / retrain_run
    task = json.loads(next(kfp_root.rglob("validate-and-register/executor_output.json")).read_text())
    registration = json.loads(task["parameterValues"]["registration"])
    bundle = next(m.parent for m in kfp_root.rglob("manifest.json") if "export" in m.parts)
    v2 = registered_version(registry, registration, bundle, retrain_run)
    timeline.append(f"retraining run {retrain_run} (gate passed: {registration['decision']['passed']}): "
                    f"challenger v{v2}")
    assert v2 != v1

    # 5. canary: the embedded split, the real Prometheus, the controller
    challenger = registry.download_bundle(NAME, "challenger", tmp_path / "serve" / "challenger")
    canary_dir = tmp_path / "canary-feedback"
    split = SplitConfig(challenger_percent=50, challenger_registered_version=v2)
    serving = cfg.serving.model_copy(
        update={"registered_version": v1, "split": split, "feedback_dir": canary_dir}
    )
    with LocalServers(champion, serving, log_dir=tmp_path / "logs-2", challenger=challenger) as endpoints:
        client = prometheus_for(endpoints.transformer_http.removeprefix("http://"))
        canary_cfg = config(
            tmp_path, f"tracking.tracking_uri={cfg.mlflow_uri()}", f"serving.feedback_dir={canary_dir}",
            f"canary.embedded_url={endpoints.transformer_http}", f"canary.prometheus.url={client.url}",
            "canary.prometheus.window=1m", "canary.traffic_steps=[50,100]", "canary.min_steps_per_stage=1",
            f"canary.max_steps={MAX_STEPS}", "canary.guardrails.min_requests=10",
            f"canary.decision_log={tmp_path / 'decisions.jsonl'}")
        totals: dict[str, int] = {}
        for step in range(MAX_STEPS):
            for revision, n in serve_and_click(
                endpoints, population, rng, REQUESTS_PER_STEP, f"c{step}"
            ).items():
                totals[revision] = totals.get(revision, 0) + n
            expected = sum(totals.values())
            poll(lambda expected=expected: client.scalar(
                'sum(hyperrec_stage_seconds_count{stage="preprocess"})') == expected, f"{expected} requests")
            decision = canary_step(canary_cfg)
            timeline.append(f"step {decision.step}: {decision.action} {decision.traffic_before}% -> "
                            f"{decision.traffic_after}%: {decision.reason}")
            if decision.final:
                break
        state = json.loads(urllib.request.urlopen(endpoints.split_url, timeout=10).read())
    print("\n".join(timeline))  # the loop's timeline, for the closing note (pytest -s)

    # 6. the aliases, the split and the decision log agree with the last decision
    assert decision.final, timeline
    records = DecisionLog(canary_cfg.canary.decision_log).records()
    assert len(records) == decision.step and records[-1]["action"] == decision.action
    # Prometheus saw both revisions' requests; the feedback log's CTR counts both registry versions.
    assert all(
        r["evidence"]["serving"][rev]["requests"] > 0 for r in records for rev in ("champion", "challenger")
    )
    assert all(records[-1]["evidence"]["ctr"][rev]["impressions"] > 0 for rev in ("champion", "challenger"))
    assert {"champion", "challenger"} <= set(totals)
    aliases = registry.aliases(NAME)
    if decision.action == "promote":
        assert aliases.get("champion") == v2 and "challenger" not in aliases
        assert state["challenger_percent"] == 100
    else:
        assert aliases.get("champion") == v1 and "challenger" not in aliases
        assert state["challenger_percent"] == 0
