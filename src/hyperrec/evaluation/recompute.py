"""An independent recomputation of the full-protocol cutoff metrics from the written artefacts only.

It reads ``recommendations.jsonl`` and the evaluated split's Parquet file and nothing else (no model, no
score matrix, no ``protocols.py`` or ``metrics.py``), with plain Python lists and dicts, so that a bug in the
harness's ranking shows up as a disagreement with ``metrics.json``.

What can be recomputed: HR, NDCG, MAP and Recall at every K <= top_n are exact, because the written top-N
list is the harness's full-protocol ranking truncated at top_n. MRR is not: a target ranked below top_n
is missing from the file, so the recomputed value is MRR@top_n (a miss counts 0) and the reported MRR must
satisfy ``MRR@top_n <= reported MRR <= MRR@top_n + 1/(top_n + 1)`` (each user whose best target ranks below
the cutoff adds less than 1/(top_n + 1) to the mean).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def read_recommendations(path: Path) -> dict[str, list[str]]:
    """user_id -> recommended item_ids, best first."""
    lists: dict[str, list[str]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                lists[str(record["user_id"])] = [str(item) for item in record["items"]]
    return lists


def read_targets(split_path: Path) -> dict[str, set[str]]:
    """user_id -> the distinct item_ids of that user's events in the split."""
    frame = pd.read_parquet(split_path, columns=["user_id", "item_id"])
    targets: dict[str, set[str]] = defaultdict(set)
    for user, item in zip(frame["user_id"].astype(str), frame["item_id"].astype(str), strict=True):
        targets[user].add(item)
    return dict(targets)


def _user_metrics(items: list[str], relevant: set[str], k: int) -> dict[str, float]:
    hits = [position for position, item in enumerate(items[:k], start=1) if item in relevant]
    ideal = sum(1 / math.log2(position + 1) for position in range(1, min(len(relevant), k) + 1))
    return {
        f"hr@{k}": 1.0 if hits else 0.0,
        f"ndcg@{k}": sum(1 / math.log2(position + 1) for position in hits) / ideal,
        f"map@{k}": sum(n / position for n, position in enumerate(hits, start=1)) / min(len(relevant), k),
        f"recall@{k}": len(hits) / len(relevant),
    }


def recompute_full_metrics(recommendations_path: Path, split_path: Path, k_values: Iterable[int],
                           top_n: int) -> dict[str, float]:
    """Means over the split's users of HR/NDCG/MAP/Recall@K for K <= top_n, and ``mrr@<top_n>``.

    Args:
        recommendations_path: a model's recommendations.jsonl.
        split_path: the evaluated split, for each user's held-out items.
        k_values: the cut-offs; those above ``top_n`` are skipped.
        top_n: the length of the written lists.

    Returns:
        Metric key (e.g. ``ndcg@10``) -> mean over the split's users.

    Raises:
        ValueError: some evaluated user has no list.
    """
    lists = read_recommendations(recommendations_path)
    targets = read_targets(split_path)
    missing = set(targets) - set(lists)
    if missing:
        raise ValueError(f"{len(missing)} evaluated users have no recommendation list")
    totals: dict[str, float] = defaultdict(float)
    for user, relevant in targets.items():
        items = lists[user][:top_n]
        for k in (k for k in k_values if k <= top_n):
            for key, value in _user_metrics(items, relevant, k).items():
                totals[key] += value
        first = next((position for position, item in enumerate(items, start=1) if item in relevant), None)
        totals[f"mrr@{top_n}"] += 1 / first if first else 0.0
    return {key: value / len(targets) for key, value in totals.items()}


def disagreements(metrics: dict, out_dir: Path, split_path: Path, *, tolerance: float = 1e-9) -> list[str]:
    """Check every model of ``metrics`` (a metrics.json dict written into ``out_dir``); [] when all agree.

    Args:
        metrics: the metrics.json dict.
        out_dir: the evaluation folder, with ``<model>/recommendations.jsonl``.
        split_path: the evaluated split.
        tolerance: the largest difference accepted.

    Returns:
        One line per disagreement. MRR is accepted up to ``1/(top_n + 1)`` above the list's value, since
        the reported one also counts targets ranked below the list.
    """
    protocol = metrics["protocol"]
    top_n = protocol["top_n"]
    problems = []
    for name, entry in metrics["models"].items():
        recomputed = recompute_full_metrics(Path(out_dir) / name / "recommendations.jsonl", split_path,
                                            protocol["k_values"], top_n)
        reported = entry["full"]
        for key, value in recomputed.items():
            if key.startswith("mrr@"):
                if not value - tolerance <= reported["mrr"] <= value + 1 / (top_n + 1) + tolerance:
                    problems.append(
                        f"{name}: mrr {reported['mrr']} outside [{value}, {value} + 1/{top_n + 1}]")
            elif abs(reported[key] - value) > tolerance:
                problems.append(f"{name}: {key} reported {reported[key]} but recomputed {value}")
    return problems
