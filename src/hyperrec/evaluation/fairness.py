"""The fairness audit: who gets good recommendations, and which items get shown, for every evaluated model.

It reads only what an evaluation left behind (``metrics.json`` for the protocol, each model's
``recommendations.jsonl``) and the prepared data, so ``hyperrec audit`` can audit any evaluation folder and
the evaluate step runs the very same code. Everything is at cutoff ``fairness.k`` under the full protocol; the
written top-N lists are the harness's exact full-protocol ranking, so the per-user NDCG/HR here equal the
harness's (``recompute.py`` checks the lists).

User side, per user family (``segment``: the behavioural segments of data prep; ``activity``: new / light /
heavy by the number of history events; ``attribute:<column>``: each column of the optional users file):
per group the number of users, mean NDCG@K and HR@K and their per-user standard errors, and the disparity
ratios worst / best group mean over the groups with at least ``min_group_users`` users (1.0: parity). For an
attribute, the HR ratio is the disparate-impact ratio (a hit in the top K is the favourable outcome; the
four-fifths rule flags < 0.8), and demographic parity of exposure compares each group's distribution of
recommendation slots over the item-popularity bins with everyone's (total-variation distance; 0: parity)
and reports each group's long-tail share.

Item side (``exposure.py``): per popularity bin the share of recommendation slots against the share of
interactions, the Gini coefficient of exposure over the catalogue, catalogue coverage and the long-tail share.

``fairness.json`` schema: ``{"k", "split", "history_splits", "min_group_users", "activity_thresholds",
"interaction_gini", "models": {name: {"groups": {family: {"groups": {label: {"n_users", "ndcg", "ndcg_se",
"hr", "hr_se", "included"}}, "ndcg_ratio", "hr_ratio", "worst", "best"}}, "exposure": {...},
"parity": {column: {"groups": {label: {"long_tail_share", "tv_distance"}}, "max_tv_distance"}}}}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hyperrec.data.activity import activity_labels
from hyperrec.data.prepared import PreparedData
from hyperrec.errors import DataError
from hyperrec.evaluation.exposure import (
    bin_shares,
    exposure_summary,
    gini,
    head_items,
    popularity_bins,
    total_variation,
)
from hyperrec.evaluation.metrics import hit_rate, ndcg, standard_error
from hyperrec.evaluation.recompute import read_recommendations
from hyperrec.fairness_settings import FairnessConfig

logger = logging.getLogger(__name__)

AUDIT_JSON, AUDIT_MD, AUDIT_HTML = "fairness.json", "fairness.md", "fairness.html"
ACTIVITY_GROUPS = ("new", "light", "heavy")


def user_quality(lists: Mapping[str, list[int]], targets: Mapping[str, np.ndarray], k: int) -> pd.DataFrame:
    """Per evaluated user (rows in sorted user order): full-protocol NDCG@k and HR@k from the top list."""
    missing = sorted(set(targets) - set(lists))
    if missing:
        raise DataError(f"{len(missing)} evaluated users have no recommendation list (e.g. {missing[0]!r})")
    rows = {}
    for user in sorted(targets):
        position = {item: rank for rank, item in enumerate(lists[user], start=1)}
        wanted = np.unique(targets[user])
        ranks = np.array([position.get(int(item), np.inf) for item in wanted], dtype=np.float64)
        rows[user] = {"ndcg": ndcg(ranks, len(ranks), k), "hr": hit_rate(ranks, k)}
    return pd.DataFrame.from_dict(rows, orient="index")


def group_disparity(quality: pd.DataFrame, labels: pd.Series, min_users: int) -> dict:
    """Per-group means with SEs, and worst / best ratios over the groups with >= min_users users."""
    labels = labels.reindex(quality.index)
    groups: dict[str, dict] = {}
    for label in sorted(labels.dropna().unique(), key=str):
        rows = quality[(labels == label).to_numpy()]
        groups[str(label)] = {
            "n_users": len(rows), "included": len(rows) >= min_users,
            "ndcg": float(rows["ndcg"].mean()), "ndcg_se": standard_error(rows["ndcg"]),
            "hr": float(rows["hr"].mean()), "hr_se": standard_error(rows["hr"]),
        }
    ranked = sorted((name for name, group in groups.items() if group["included"]),
                    key=lambda name: (groups[name]["ndcg"], name))
    return {
        "groups": groups,
        "worst": ranked[0] if ranked else None,
        "best": ranked[-1] if ranked else None,
        "ndcg_ratio": _ratio([groups[name]["ndcg"] for name in ranked]),
        "hr_ratio": _ratio([groups[name]["hr"] for name in ranked]),
    }


def _ratio(values: list[float]) -> float | None:
    """min / max of group means; None with fewer than two groups; 1.0 when every group scores 0."""
    if len(values) < 2:
        return None
    best = max(values)
    return float(min(values) / best) if best > 0 else 1.0


def exposure_parity(lists: Mapping[str, list[int]], labels: pd.Series, popularity: np.ndarray, k: int,
                    n_bins: int, min_users: int) -> dict:
    """Demographic parity of exposure for one user attribute (see the module docstring)."""
    bins, head = popularity_bins(popularity, n_bins), head_items(popularity)
    everyone = _slot_distribution([lists[user] for user in labels.index], bins, n_bins, k)
    groups: dict[str, dict] = {}
    for label in sorted(labels.dropna().unique(), key=str):
        members = [lists[user] for user in labels.index[(labels == label).to_numpy()]]
        slots = np.concatenate([np.asarray(items[:k], dtype=np.int64) for items in members])
        groups[str(label)] = {
            "n_users": len(members), "included": len(members) >= min_users,
            "long_tail_share": float((~head[slots]).mean()) if len(slots) else 0.0,
            "tv_distance": total_variation(_slot_distribution(members, bins, n_bins, k), everyone),
        }
    included = [group["tv_distance"] for group in groups.values() if group["included"]]
    return {"groups": groups, "max_tv_distance": max(included) if included else None}


def _slot_distribution(lists: list[list[int]], bins: np.ndarray, n_bins: int, k: int) -> np.ndarray:
    slots = np.concatenate(
        [np.asarray(items[:k], dtype=np.int64) for items in lists] or [np.zeros(0, np.int64)]
    )
    return bin_shares(np.ones(len(slots)), bins[slots], n_bins)


def user_families(data: PreparedData, history_splits: tuple[str, ...], cfg: FairnessConfig,
                  attributes: pd.DataFrame | None) -> dict[str, pd.Series]:
    """family -> user_id-indexed labels: segment, activity and attribute:<column> for each attribute."""
    segments = data.segments
    families = {"segment": pd.Series(segments["segment"].to_numpy(), index=segments["user_id"].astype(str),
                                     dtype=object)}
    history = pd.concat([data.split(name) for name in history_splits], ignore_index=True)
    sizes = history.groupby(history["user_id"].astype(str)).size()
    families["activity"] = activity_labels(sizes, cfg)
    if attributes is not None:
        indexed = attributes.set_index(attributes["user_id"].astype(str))
        for column in (c for c in attributes.columns if c != "user_id"):
            families[f"attribute:{column}"] = indexed[column].astype(object)
    return families


def audit_model(lists: Mapping[str, list[int]], targets: Mapping[str, np.ndarray],
                families: Mapping[str, pd.Series], popularity: np.ndarray, cfg: FairnessConfig) -> dict:
    """The audit of one model's top lists (one ``models`` entry of fairness.json)."""
    quality = user_quality(lists, targets, cfg.k)
    users = quality.index
    entry = {
        "groups": {family: group_disparity(quality, labels, cfg.min_group_users)
                   for family, labels in families.items()},
        "exposure": exposure_summary([lists[user] for user in users], popularity, cfg.k, cfg.popularity_bins),
        "parity": {},
    }
    for family, labels in families.items():
        if family.startswith("attribute:"):
            evaluated = labels[labels.index.isin(users)]
            entry["parity"][family.split(":", 1)[1]] = exposure_parity(
                lists, evaluated, popularity, cfg.k, cfg.popularity_bins, cfg.min_group_users)
    return entry


def audit_evaluation(data: PreparedData, evaluation_dir: Path, cfg: FairnessConfig,
                     attributes: pd.DataFrame | None = None) -> dict:
    """Audit every model of ``evaluation_dir`` (metrics.json + <model>/recommendations.jsonl)."""
    evaluation_dir = Path(evaluation_dir)
    metrics = _read_metrics(evaluation_dir)
    protocol = metrics["protocol"]
    if protocol["top_n"] < cfg.k:
        raise DataError(f"the evaluation wrote top-{protocol['top_n']} lists; the audit needs at least "
                        f"fairness.k={cfg.k}", file=str(evaluation_dir / "metrics.json"))
    split, history_splits = metrics["split"], tuple(protocol["history_splits"])
    targets = data.histories((split,))
    history = pd.concat([data.split(name) for name in history_splits], ignore_index=True)
    popularity = np.bincount(history["item_idx"].to_numpy(dtype=np.int64), minlength=data.n_items)
    families = user_families(data, history_splits, cfg, attributes)
    result: dict = {
        "k": cfg.k, "split": split, "history_splits": list(history_splits),
        "min_group_users": cfg.min_group_users,
        "activity_thresholds": {"new_below": cfg.activity_new_below, "heavy_from": cfg.activity_heavy_from},
        "interaction_gini": gini(popularity.astype(np.float64)), "models": {},
    }
    for name in metrics["models"]:
        lists = _item_lists(evaluation_dir / name / "recommendations.jsonl", data.item_index)
        result["models"][name] = audit_model(lists, targets, families, popularity, cfg)
        logger.info("audit %s: segment NDCG ratio %s, exposure Gini %.3f", name,
                    result["models"][name]["groups"]["segment"]["ndcg_ratio"],
                    result["models"][name]["exposure"]["gini"])
    return result


def _item_lists(path: Path, item_index: Mapping[str, int]) -> dict[str, list[int]]:
    if not path.exists():
        raise DataError("no recommendations for this model; run the evaluation first", file=str(path))
    lists = read_recommendations(path)
    unknown = next((item for items in lists.values() for item in items if item not in item_index), None)
    if unknown is not None:
        raise DataError(
            f"item {unknown!r} is not in the prepared catalogue (another dataset?)", file=str(path)
        )
    return {user: [item_index[item] for item in items] for user, items in lists.items()}


def _read_metrics(evaluation_dir: Path) -> dict:
    path = evaluation_dir / "metrics.json"
    if not path.is_file():
        raise DataError("no metrics.json; expected an evaluation folder (hyperrec evaluate)", file=str(path))
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"not JSON ({exc})", file=str(path)) from None
    protocol = metrics.get("protocol") if isinstance(metrics, dict) else None
    if not isinstance(protocol, dict) or not {"top_n", "history_splits"} <= set(protocol) \
            or not isinstance(metrics.get("models"), dict) or "split" not in metrics:
        raise DataError("not a hyperrec metrics.json (needs split, protocol.top_n, protocol.history_splits "
                        "and models)", file=str(path))
    return metrics
