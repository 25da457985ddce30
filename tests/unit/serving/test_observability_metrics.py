"""Every metric the dashboard and the alerts query is one the code really exports.

The serving side is scraped from a real transformer's /metrics (KServe's REST app in-process) after traffic
that exercises each signal: a model answer, an invalid request, a degraded answer after predictor retries,
a popularity fallback and feedback. The drift side is the registry ``hyperrec drift`` pushes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import OnnxScorer, fake_pseudonymize, make_server

from hyperrec.monitoring.metrics import drift_registry
from hyperrec.observability.dashboard import panel_expressions
from hyperrec.serving.server import build_models, free_port

REPO = Path(__file__).resolve().parents[3]
URL = "/v1/models/ranker:predict"
#: Labels the scrape adds (PodMonitor relabelings, Prometheus target labels), not the exporter.
SCRAPE_LABELS = {"namespace", "revision", "pod", "component", "job", "instance", "le"}


def _client(bundle, settings, scorer=None):
    factory = (lambda manifest: scorer) if scorer is not None else None
    models = build_models(
        "transformer", bundle, settings, pseudonymize=fake_pseudonymize, scorer_factory=factory
    )
    for model in models:
        model.load()
    return make_server(models)


def _serving_metrics_text(demo_bundle, serving_settings) -> str:
    healthy = _client(demo_bundle, serving_settings(), OnnxScorer(None, demo_bundle))
    assert healthy.post(URL, json={"user_id": "u", "history": ["m00001"]}).status_code == 200
    assert healthy.post(URL, json={"user_id": "new", "k": 2}).json()["source"] == "popular"
    assert healthy.post(URL, json={"user_id": "u", "k": 0}).status_code == 400
    feedback = {"request_id": "r", "user_id": "u", "events": [{"type": "impression", "item_id": "m00001"},
                                                               {"type": "click", "item_id": "m00001"}]}
    assert healthy.post("/v1/models/feedback:predict", json=feedback).status_code == 200
    down = serving_settings(predictor_url=f"127.0.0.1:{free_port()}", request_timeout_s=0.4,
                            attempt_timeout_s=0.1, retries=1, backoff_max_s=0.01)
    answer = _client(demo_bundle, down).post(URL, json={"user_id": "u", "history": ["m00001"]}).json()
    assert answer["degraded"] is True
    return healthy.get("/metrics").text


def _drift_metrics_text() -> str:
    result = SimpleNamespace(drift_detected=True, checks={"event_mix": SimpleNamespace(drift=True)},
                             generated_at="2025-01-01T00:00:00Z", quality={"status": "ok"})
    return generate_latest(drift_registry(result)).decode()


def _exported(text: str) -> dict[str, set[tuple[str, str]]]:
    """Sample name -> its (label, value) pairs, from Prometheus text exposition."""
    exported: dict[str, set[tuple[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels.items())
    return exported


def _queried_expressions() -> list[str]:
    rules = yaml.safe_load((REPO / "manifests/components/monitoring/prometheusrule.yaml").read_text())
    exprs = [rule["expr"] for group in rules["spec"]["groups"] for rule in group["rules"]]
    dashboard = json.loads((REPO / "manifests/components/monitoring/grafana-dashboard.json").read_text())
    return exprs + panel_expressions(dashboard)


def test_the_dashboard_and_alerts_query_only_exported_metrics_and_labels(demo_bundle, serving_settings):
    exported = _exported(_serving_metrics_text(demo_bundle, serving_settings) + _drift_metrics_text())
    selector = re.compile(r"\b(hyperrec_[a-z0-9_]+)(?:\{([^}]*)\})?")
    matcher = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
    problems, seen = [], set()
    for expr in _queried_expressions():
        for name, matchers in selector.findall(expr):
            seen.add(name)
            if name not in exported:
                problems.append(f"{name} (in {expr}) is not exported")
                continue
            for label, op, value in matcher.findall(matchers):
                if label in SCRAPE_LABELS:
                    continue
                values = {v for k, v in exported[name] if k == label}
                if not values:
                    problems.append(f"{name} has no label {label}")
                elif op == "=" and value not in values:
                    problems.append(f'{name}{{{label}="{value}"}} never appears (seen {sorted(values)})')
    assert not problems, "\n".join(problems)
    assert len(seen) >= 10, seen
