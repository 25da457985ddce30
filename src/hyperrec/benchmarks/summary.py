"""The statistics of the offline benchmarks: per-user standard errors, paired differences, the comparisons.

Every number here comes from the evaluation's ``metrics.json`` and its per-model ``recommendations.jsonl``:
``add_hit_rate_errors`` adds the standard error of each hit rate, ``paired_difference`` compares two models
user by user on the full protocol, and ``quality_summary`` puts the quality benchmark's comparisons together
(ratios to the best baseline, fine-tuned vs zero-shot, next_item_lm vs next_item_id, training figures).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

ZERO_SHOT = "zero_shot_lm"
LM, ID_ONLY = "next_item_lm", "next_item_id"
#: (protocol, metric) pairs the benchmarks report.
HEADLINE = (("full", "hr@10"), ("full", "ndcg@10"), ("sampled", "hr@10"), ("sampled", "ndcg@10"))


def baseline_names() -> set[str]:
    from hyperrec.models.registry import BASELINES

    return {cls.name for cls in BASELINES}


def add_hit_rate_errors(metrics: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``metrics`` with ``hr@K_se`` beside every ``hr@K``: HR is 0/1 per user, so its per-user
    standard error is ``sqrt(p(1-p)/(n-1))`` exactly (sample std with ddof=1 over sqrt(n)).

    Args:
        metrics: a metrics.json dict with ``n_users`` and ``full``/``sampled`` blocks per model; not changed.

    Returns:
        The copy with the ``hr@K_se`` entries added (0 when fewer than two users).
    """
    result = copy.deepcopy(metrics)
    for entry in result["models"].values():
        n = int(entry.get("n_users", 0))
        for protocol in ("full", "sampled"):
            block = entry.get(protocol) or {}
            for key in [k for k in block if k.startswith("hr@") and not k.endswith("_se")]:
                p = float(block[key])
                block[f"{key}_se"] = math.sqrt(max(p * (1 - p), 0.0) / (n - 1)) if n > 1 else 0.0
    return result


def per_user_full(
    evaluation_dir: Path, split_path: Path, model: str, k: int = 10
) -> dict[str, tuple[float, float]]:
    """user_id -> (HR@k, NDCG@k) of the full protocol, from the model's recommendations.jsonl (exact for
    k <= top_n, as ``hyperrec.evaluation.recompute`` shows).

    Args:
        evaluation_dir: the evaluation folder, with one subfolder per model.
        split_path: the held-out split whose targets the lists are scored against.
        model: the model whose recommendations are read.
        k: the cut-off.

    Returns:
        user_id -> (HR@k, NDCG@k), for every user with targets (an empty list when the model has none).
    """
    from hyperrec.evaluation.recompute import read_recommendations, read_targets

    lists = read_recommendations(Path(evaluation_dir) / model / "recommendations.jsonl")
    targets = read_targets(Path(split_path))
    values: dict[str, tuple[float, float]] = {}
    for user, relevant in targets.items():
        top = lists.get(user, [])[:k]
        hits = [position for position, item in enumerate(top, start=1) if item in relevant]
        ideal = sum(1 / math.log2(position + 1) for position in range(1, min(len(relevant), k) + 1))
        values[user] = (1.0 if hits else 0.0, sum(1 / math.log2(p + 1) for p in hits) / ideal)
    return values


def paired_difference(evaluation_dir: Path, split_path: Path, model: str, other: str,
                      k: int = 10) -> dict[str, Any]:
    """``model`` minus ``other`` per user on full HR@k and NDCG@k: mean, paired standard error, z, wins.

    Args:
        evaluation_dir: the evaluation folder, with one subfolder per model.
        split_path: the held-out split the lists are scored against.
        model: the first model.
        other: the model it is compared with.
        k: the cut-off.

    Returns:
        ``model``, ``other``, ``n_users`` (users in both) and, per ``full.hr@k`` / ``full.ndcg@k``: mean
        difference, standard error, z, ``significant`` (abs(z) >= 2) and the users better and worse.
    """
    a = per_user_full(evaluation_dir, split_path, model, k)
    b = per_user_full(evaluation_dir, split_path, other, k)
    users = sorted(set(a) & set(b))
    result: dict[str, Any] = {"model": model, "other": other, "n_users": len(users)}
    for column, metric in enumerate((f"hr@{k}", f"ndcg@{k}")):
        diff = np.array([a[u][column] - b[u][column] for u in users], dtype=np.float64)
        mean = float(diff.mean()) if len(diff) else 0.0
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        z = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
        result[f"full.{metric}"] = {
            "difference": mean, "se": se, "z": z, "significant": abs(z) >= 2.0,
            "users_better": int((diff > 0).sum()), "users_worse": int((diff < 0).sum()),
        }
    return result


def _value(metrics: Mapping[str, Any], model: str, key: str) -> float:
    protocol, metric = key.split(".", 1)
    return float(metrics["models"][model][protocol][metric])


def quality_summary(metrics: Mapping[str, Any], evaluation_dir: Path, split_path: Path,
                    training: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The comparisons of the quality benchmark (see ``hyperrec.benchmarks.quality``).

    Args:
        metrics: the evaluation's metrics.json with ``hr@K_se`` added (``add_hit_rate_errors``).
        evaluation_dir: the folder holding each model's recommendations.jsonl (for the paired differences).
        split_path: the evaluated split's parquet file (the per-user targets).
        training: per-model training figures (``hyperrec.benchmarks.stages.training_info``).

    Returns:
        ``headline`` values, and when the models are there ``best_baseline``, ``ratio_to_best_baseline``,
        ``vs_best_baseline_paired``, ``fine_tuned_vs_zero_shot``, ``next_item_lm_vs_next_item_id``; then
        ``training``.
    """
    models = list(metrics["models"])
    baselines = [m for m in models if m in baseline_names()]
    language = [m for m in models if m not in baselines]
    keys = [f"{p}.{m}" for p, m in HEADLINE]
    summary: dict[str, Any] = {"headline": _headline(metrics, models, keys)}
    if baselines:
        summary |= _vs_best_baseline(metrics, evaluation_dir, split_path, baselines, language, keys)
    fine_tuned = [m for m in language if m != ZERO_SHOT]
    if ZERO_SHOT in models and fine_tuned:
        summary["fine_tuned_vs_zero_shot"] = _vs_zero_shot(
            metrics, evaluation_dir, split_path, fine_tuned, keys
        )
    if LM in models and ID_ONLY in models:
        summary["next_item_lm_vs_next_item_id"] = {
            "beats": {key: _value(metrics, LM, key) > _value(metrics, ID_ONLY, key) for key in keys},
            "paired": paired_difference(evaluation_dir, split_path, LM, ID_ONLY),
        }
    summary["training"] = {name: dict(values) for name, values in training.items()}
    return summary


def _headline(metrics: Mapping[str, Any], models: list[str], keys: list[str]) -> dict[str, dict[str, float]]:
    return {
        model: {key: _value(metrics, model, key) for key in keys}
        | {f"{key}_se": float(metrics["models"][model][key.split(".")[0]].get(f"{key.split('.')[1]}_se", 0))
           for key in keys}
        for model in models
    }


def _vs_best_baseline(
    metrics: Mapping[str, Any],
    evaluation_dir: Path,
    split_path: Path,
    baselines: list[str],
    language: list[str],
    keys: list[str],
) -> dict[str, Any]:
    best = {key: max(baselines, key=lambda m, key=key: _value(metrics, m, key)) for key in keys}
    return {
        "best_baseline": {
            key: {"model": best[key], "value": _value(metrics, best[key], key)} for key in keys
        },
        "ratio_to_best_baseline": {
            model: {
                key: (
                    _value(metrics, model, key) / _value(metrics, best[key], key)
                    if _value(metrics, best[key], key) > 0
                    else None
                )
                for key in keys
            }
            for model in language
        },
        "vs_best_baseline_paired": {
            model: paired_difference(evaluation_dir, split_path, model, best["full.ndcg@10"])
            for model in language
        },
    }


def _vs_zero_shot(metrics: Mapping[str, Any], evaluation_dir: Path, split_path: Path, fine_tuned: list[str],
                  keys: list[str]) -> dict[str, Any]:
    per_model = {
        model: {key: _value(metrics, model, key) > _value(metrics, ZERO_SHOT, key) for key in keys}
        | {"paired": paired_difference(evaluation_dir, split_path, model, ZERO_SHOT)}
        for model in fine_tuned
    }
    return {
        "every_fine_tuned_beats_zero_shot": {key: all(per_model[m][key] for m in fine_tuned) for key in keys},
        "per_model": per_model,
    }
