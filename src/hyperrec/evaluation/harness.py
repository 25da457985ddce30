"""The evaluation harness: score every user of a split, rank under both protocols, write the results.

Which events a model sees and which items it may not recommend:

- ``split="validation"``: history = train; targets = the validation items.
- ``split="test"``: history = train + validation; targets = the test items.
- In both, only the user's *train* items are masked (full protocol), so the validation item stays a candidate
  when the test split is evaluated, as the reference protocol in ``shared/datasets/README.md`` asks.

Users are evaluated in sorted ``user_id`` order: every user with at least one event in the evaluated split.
Tie-breaking and negative sampling are seeded and shared by every model of one call (see ``protocols.py``).

``out_dir/metrics.json``::

    {
      "protocol": {"split": "test", "history_splits": ["train", "validation"], "masked_splits": ["train"],
                   "k_values": [10, 20], "top_n": 100, "sampled_negatives": 100,
                   "tie_breaking": "...", "seed": 42, "n_items": 9742, "n_users": 610},
      "split": "test",
      "models": {
        "<model name>": {
          "n_users": 610,
          "scoring_seconds": 1.2,
          "full":    {"hr@10": ..., "ndcg@10": ..., "map@10": ..., "recall@10": ..., (same @20) ...,
                      "mrr": ..., "ndcg@10_se": ..., "ndcg@20_se": ...},
          "sampled": {(the same keys), "auc": ...},
          "coverage@10": ..., "coverage@20": ...,
          "segments": {"<segment>": {"n_users": ..., "full": {...}, "sampled": {...}}}
        }
      }
    }

Every metric is a mean over users; ``<metric>_se`` is the per-user standard error of that mean;
``coverage@K`` is the number of distinct items in the users' top-K lists divided by the catalogue size.
``segments`` is present (possibly empty) only when segments were given; users without a segment are left out
of it. ``out_dir/<model>/recommendations.jsonl`` holds one ``{"user_id": ..., "items": [item_id, ...]}`` a
line, in user order: the first ``top_n`` full-protocol candidates, best first, which are exactly the items the
full-protocol metrics rank (``recompute.py`` checks that).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hyperrec.data.prepared import SPLITS, PreparedData
from hyperrec.errors import DataError
from hyperrec.evaluation.metrics import CUTOFF_METRICS, cutoff_metrics, standard_error
from hyperrec.evaluation.protocols import (
    TieBreak,
    check_scores,
    full_ranks,
    mask_items,
    sample_negatives,
    sampled_ranks,
    top_items,
)
from hyperrec.evaluation.settings import EvaluationConfig
from hyperrec.models.base import Recommender, ScoringBatch

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
RECOMMENDATIONS_FILE = "recommendations.jsonl"
#: What a model may know when a split is evaluated: every earlier split.
HISTORY_SPLITS = {"validation": ("train",), "test": ("train", "validation")}
MASKED_SPLITS = ("train",)
TIE_BREAKING = "one seeded random permutation of the catalogue; AUC counts a tie as 1/2"
PROTOCOLS = ("full", "sampled")


@dataclass(frozen=True)
class EvaluationSet:
    """Everything about the users of one split that does not depend on the model."""

    user_ids: list[str]
    histories: list[np.ndarray]
    masked: list[np.ndarray]
    targets: list[np.ndarray]
    negatives: list[np.ndarray] | None
    tie: TieBreak
    n_items: int

    @classmethod
    def build(cls, data: PreparedData, split: str, *, seed: int,
              sampled_negatives: int | None) -> EvaluationSet:
        """Read the split; draw the sampled-protocol negatives only when ``sampled_negatives`` is given."""
        if split not in HISTORY_SPLITS:
            raise ValueError(f"cannot evaluate split {split!r}; expected one of {sorted(HISTORY_SPLITS)}")
        _check_catalogue(data)
        targets = data.histories((split,))
        if not targets:
            raise DataError(f"the {split} split has no events to evaluate")
        user_ids = sorted(targets)
        empty = np.zeros(0, dtype=np.int64)
        history = data.histories(HISTORY_SPLITS[split])
        masked = data.histories(MASKED_SPLITS)
        negatives = None
        if sampled_negatives is not None:
            touched = data.histories(SPLITS)
            negatives = sample_negatives([touched[u] for u in user_ids], data.n_items, sampled_negatives,
                                         seed)
        eval_set = cls(
            user_ids=user_ids,
            histories=[history.get(u, empty) for u in user_ids],
            masked=[np.unique(masked.get(u, empty)) for u in user_ids],
            targets=[np.unique(targets[u]) for u in user_ids],
            negatives=negatives,
            tie=TieBreak.seeded(data.n_items, seed),
            n_items=data.n_items,
        )
        pairs = zip(eval_set.targets, eval_set.masked, strict=True)
        repeats = sum(int(np.isin(wanted, train).sum()) for wanted, train in pairs)
        if repeats:
            logger.warning("%d %s targets are already among their user's train items; the train mask makes "
                           "them misses", repeats, split)
        return eval_set

    def sample(self, n: int, seed: int) -> EvaluationSet:
        """At most ``n`` users, drawn with ``seed``, in their order (all of them when there are fewer)."""
        if len(self.user_ids) <= n:
            return self
        rows = np.sort(np.random.default_rng(seed).choice(len(self.user_ids), size=n, replace=False))
        pick = [int(i) for i in rows]
        return replace(self, user_ids=[self.user_ids[i] for i in pick],
                       histories=[self.histories[i] for i in pick], masked=[self.masked[i] for i in pick],
                       targets=[self.targets[i] for i in pick],
                       negatives=None if self.negatives is None else [self.negatives[i] for i in pick])

    def batches(self, size: int) -> Iterator[slice]:
        for start in range(0, len(self.user_ids), size):
            yield slice(start, min(start + size, len(self.user_ids)))


@dataclass(frozen=True)
class ModelRun:
    """Per-user metrics of one model (rows in user order) and its top lists."""

    full: pd.DataFrame
    sampled: pd.DataFrame | None
    top: list[np.ndarray]
    seconds: float


def _check_catalogue(data: PreparedData) -> None:
    if not np.array_equal(data.items["item_idx"].to_numpy(), np.arange(data.n_items)):
        raise DataError("items.item_idx must equal the row number (catalogue order)", file="items.parquet")


def _run_model(name: str, model: Recommender, eval_set: EvaluationSet, *, k_values: Sequence[int],
               batch_size: int, top_n: int) -> ModelRun:
    """Score users batch by batch and turn each batch into per-user metrics right away (bounded memory)."""
    full_rows: list[dict[str, float]] = []
    sampled_rows: list[dict[str, float]] = []
    top: list[np.ndarray] = []
    started = time.perf_counter()
    for rows in tqdm(list(eval_set.batches(batch_size)), desc=f"evaluate {name}", unit="batch",
                     disable=None, leave=False):
        batch = ScoringBatch(eval_set.user_ids[rows], eval_set.histories[rows])
        scores = check_scores(model.score(batch), len(batch.user_ids), eval_set.n_items, name)
        masked = mask_items(scores, eval_set.masked[rows])
        if top_n:
            top.extend(top_items(masked, eval_set.tie, top_n))
        for offset, user in enumerate(range(rows.start, rows.stop)):
            targets = eval_set.targets[user]
            ranks = full_ranks(masked[offset], targets, eval_set.tie)
            full_rows.append(cutoff_metrics(ranks, len(targets), k_values))
            if eval_set.negatives is not None:
                ranks, user_auc = sampled_ranks(masked[offset], targets, eval_set.negatives[user],
                                                eval_set.tie)
                sampled_rows.append({**cutoff_metrics(ranks, len(targets), k_values), "auc": user_auc})
    return ModelRun(
        full=pd.DataFrame(full_rows),
        sampled=pd.DataFrame(sampled_rows) if eval_set.negatives is not None else None,
        top=top,
        seconds=time.perf_counter() - started,
    )


def _summary(per_user: pd.DataFrame, k_values: Sequence[int]) -> dict[str, float]:
    summary = {column: float(per_user[column].mean()) for column in per_user.columns}
    for k in k_values:
        summary[f"ndcg@{k}_se"] = standard_error(per_user[f"ndcg@{k}"])
    return summary


def _segment_breakdown(run: ModelRun, user_ids: list[str], segments: pd.DataFrame,
                       k_values: Sequence[int]) -> dict[str, dict]:
    """Per-segment means; ``segments`` has user_id and segment columns."""
    if not {"user_id", "segment"} <= set(segments.columns):
        raise DataError("segments need user_id and segment columns")
    by_user = dict(zip(segments["user_id"].astype(str), segments["segment"], strict=True))
    # object dtype keeps integer labels integers when some users have none (no "1.0" keys)
    labels = pd.Series([by_user.get(u) for u in user_ids], dtype=object)
    breakdown: dict[str, dict] = {}
    for label in sorted(labels.dropna().unique()):
        rows = (labels == label).to_numpy()
        entry: dict = {"n_users": int(rows.sum()), "full": _summary(run.full[rows], k_values)}
        if run.sampled is not None:
            entry["sampled"] = _summary(run.sampled[rows], k_values)
        breakdown[str(label)] = entry
    return breakdown


def _coverage(top: list[np.ndarray], k_values: Sequence[int], n_items: int) -> dict[str, float]:
    return {
        f"coverage@{k}": len(np.unique(np.concatenate([items[:k] for items in top]))) / n_items
        for k in k_values
    }


def _write_recommendations(path: Path, user_ids: list[str], top: list[np.ndarray], item_ids: np.ndarray,
                           top_n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for user, items in zip(user_ids, top, strict=True):
            handle.write(json.dumps({"user_id": user, "items": item_ids[items[:top_n]].tolist()}) + "\n")


def _protocol_block(cfg: EvaluationConfig, split: str, seed: int, eval_set: EvaluationSet) -> dict:
    return {
        "split": split,
        "history_splits": list(HISTORY_SPLITS[split]),
        "masked_splits": list(MASKED_SPLITS),
        "k_values": list(cfg.k_values),
        "top_n": cfg.top_n,
        "sampled_negatives": cfg.sampled_negatives,
        "tie_breaking": TIE_BREAKING,
        "seed": seed,
        "n_items": eval_set.n_items,
        "n_users": len(eval_set.user_ids),
    }


def evaluate(models: Mapping[str, Recommender], data: PreparedData, cfg: EvaluationConfig, out_dir: Path, *,
             split: str = "test", seed: int, segments: pd.DataFrame | None = None) -> dict:
    """Evaluate every model under both protocols; write metrics.json and each model's recommendations.

    Returns the same dict that is written to ``out_dir/metrics.json`` (schema in the module docstring).
    """
    eval_set = EvaluationSet.build(data, split, seed=seed, sampled_negatives=cfg.sampled_negatives)
    k_values = sorted(set(cfg.k_values))
    list_length = max(cfg.top_n, *k_values)
    item_ids = data.items["item_id"].astype(str).to_numpy()
    logger.info("evaluating %d model(s) on %d users of the %s split (%d items)", len(models),
                len(eval_set.user_ids), split, eval_set.n_items)
    result: dict = {"protocol": _protocol_block(cfg, split, seed, eval_set), "split": split, "models": {}}
    for name, model in models.items():
        run = _run_model(name, model, eval_set, k_values=k_values, batch_size=cfg.user_batch_size,
                         top_n=list_length)
        entry: dict = {
            "n_users": len(eval_set.user_ids),
            "scoring_seconds": round(run.seconds, 3),
            "full": _summary(run.full, k_values),
            "sampled": _summary(run.sampled, k_values),
            **_coverage(run.top, k_values, eval_set.n_items),
        }
        if segments is not None:
            entry["segments"] = _segment_breakdown(run, eval_set.user_ids, segments, k_values)
        result["models"][name] = entry
        _write_recommendations(Path(out_dir) / name / RECOMMENDATIONS_FILE, eval_set.user_ids, run.top,
                               item_ids, cfg.top_n)
        headline = f"ndcg@{k_values[0]}"
        logger.info("%s: full %s %.4f, sampled %s %.4f (%.1f s)", name, headline, entry["full"][headline],
                    headline, entry["sampled"][headline], run.seconds)
    out_path = Path(out_dir) / METRICS_FILE
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def parse_metric(metric: str) -> tuple[str, str, int | None]:
    """``"ndcg@10"``, ``"full.ndcg@10"`` or ``"sampled.auc"`` -> (protocol, metric key, cutoff or None)."""
    protocol, _, key = metric.rpartition(".")
    protocol = protocol or "full"
    name, _, cutoff = key.partition("@")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} in metric {metric!r}; expected one of {PROTOCOLS}")
    if cutoff:
        if name not in CUTOFF_METRICS or not cutoff.isdigit() or int(cutoff) < 1:
            raise ValueError(f"unknown metric {metric!r}; cutoff metrics are {CUTOFF_METRICS} at @K, K >= 1")
        return protocol, key, int(cutoff)
    if key == "mrr" or (key == "auc" and protocol == "sampled"):
        return protocol, key, None
    raise ValueError(f"unknown metric {metric!r}")


def evaluate_ranking_metric(model: Recommender, data: PreparedData, split: str = "validation",
                            metric: str = "ndcg@10", *, seed: int, user_batch_size: int = 256,
                            sampled_negatives: int = 100) -> float:
    """One metric of one model, for early stopping: nothing is written and only what the metric needs runs.

    ``metric`` is ``"<key>"`` (full protocol) or ``"<protocol>.<key>"``, as in
    ``EvaluationConfig.gate_metric``.
    Same users, masking and tie-breaking as ``evaluate`` with the same seed, so the value equals the one
    ``evaluate`` would report.
    """
    protocol, key, cutoff = parse_metric(metric)
    eval_set = EvaluationSet.build(data, split, seed=seed,
                                   sampled_negatives=sampled_negatives if protocol == "sampled" else None)
    run = _run_model(getattr(model, "name", type(model).__name__), model, eval_set,
                     k_values=[cutoff] if cutoff else [], batch_size=user_batch_size, top_n=0)
    per_user = run.full if protocol == "full" else run.sampled
    return float(per_user[key].mean())
