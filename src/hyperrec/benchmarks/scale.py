"""The scale benchmark: the whole quality run on a catalogue of 50k items and 1M interactions, timed, with
peak RSS.

No public dataset of that size can be installed here, so ``synthetic_dataset`` writes one in the generic
format, **synthetic** and documented as such, with the skew of real logs: item popularity is Zipf-like
(exponent ``zipf``), user activity log-normal, and every item belongs to one of ``n_topics`` topics that both
its text (topic words plus item-specific words) and the users' tastes follow (each user draws ``taste``
of their items from one or two favourite topics, the rest by popularity), so text and co-occurrence both
carry signal. Timestamps increase per user, so the split is leave-last-out.

``run_scale(cfg, out_dir, settings)`` generates the data into ``out_dir/raw`` and runs ``run_quality`` on it;
``scale.json`` holds the data's shape, the wall time per stage and the peak resident memory of this process
and of its children (``resource.getrusage``), which is what a machine must have for the run.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from hyperrec.config import HyperrecConfig

logger = logging.getLogger(__name__)

SCALE_FILE = "scale.json"
_VOCABULARY = 2_000


class ScaleSettings(BaseModel):
    """Shape of the synthetic data set."""

    model_config = ConfigDict(extra="forbid")

    n_items: int = Field(50_000, ge=10)
    n_interactions: int = Field(1_000_000, ge=100)
    n_users: int = Field(20_000, ge=5)
    n_topics: int = Field(50, ge=1)
    zipf: float = Field(1.0, gt=0, description="Popularity of the item of rank r is proportional to r^-zipf.")
    taste: float = Field(0.7, ge=0, le=1, description="Share of a user's items drawn from their topics.")
    seed: int = 42


def _user_activity(s: ScaleSettings, rng: np.random.Generator) -> np.ndarray:
    """Events per user: log-normal, at least 3 (so every user has a test and a validation item), summing to
    exactly ``n_interactions`` whenever that is at least 3 per user (rounding down alone lost 1 % of 1M)."""
    weights = rng.lognormal(mean=0.0, sigma=1.0, size=s.n_users)
    share = weights / weights.sum()
    counts = np.maximum(3, np.floor(share * s.n_interactions)).astype(np.int64)
    missing = s.n_interactions - int(counts.sum())
    if missing > 0:  # the remainder goes to users drawn by the same log-normal weights
        counts += np.bincount(rng.choice(s.n_users, size=missing, p=share), minlength=s.n_users)
    return counts


def _draw(probabilities: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.searchsorted(np.cumsum(probabilities), rng.random(size) * probabilities.sum()).clip(
        0, len(probabilities) - 1)


def synthetic_dataset(s: ScaleSettings, out_dir: Path) -> dict[str, int | str]:
    """Write ``interactions.csv`` and ``items.csv`` (generic format) into ``out_dir``; return their shape.

    Args:
        s: the generator settings (sizes, Zipf exponent, topics, taste share, seed).
        out_dir: where the two CSV files are written (created if missing).

    Returns:
        The counts of items, users and interactions, and the paths of the two files.
    """
    rng = np.random.default_rng(s.seed)
    popularity = 1.0 / np.arange(1, s.n_items + 1) ** s.zipf
    popularity = popularity[rng.permutation(s.n_items)]
    topic = rng.integers(0, s.n_topics, s.n_items)
    by_topic = [np.flatnonzero(topic == t) for t in range(s.n_topics)]
    counts = _user_activity(s, rng)
    users, items = [], []
    for user, count in enumerate(counts):
        favourites = rng.choice(s.n_topics, size=min(2, s.n_topics), replace=False)
        pool = np.concatenate([by_topic[t] for t in favourites])
        n_taste = int(round(s.taste * count)) if len(pool) else 0
        chosen = np.concatenate([pool[_draw(popularity[pool], n_taste, rng)],
                                 _draw(popularity, int(count) - n_taste, rng)])
        users.append(np.full(len(chosen), user))
        items.append(chosen)
    user_col, item_col = np.concatenate(users), np.concatenate(items)
    order = np.lexsort((rng.random(len(user_col)), user_col))
    out_dir.mkdir(parents=True, exist_ok=True)
    interactions = pd.DataFrame({"user_id": [f"u{u}" for u in user_col[order]],
                                 "item_id": [f"i{i}" for i in item_col[order]], "event": "click",
                                 "timestamp": 1_600_000_000 + np.arange(len(order)) * 60})
    interactions.to_csv(out_dir / "interactions.csv", index=False)
    words = rng.integers(0, _VOCABULARY, size=(s.n_items, 3))
    pd.DataFrame({
        "item_id": [f"i{i}" for i in range(s.n_items)],
        "title": [f"topic{topic[i]} w{words[i, 0]} w{words[i, 1]}" for i in range(s.n_items)],
        "text": [f"about topic{topic[i]} and w{words[i, 2]}" for i in range(s.n_items)],
        "categories": [f"topic{topic[i]}" for i in range(s.n_items)],
    }).to_csv(out_dir / "items.csv", index=False)
    return {"items": s.n_items, "users": int(s.n_users), "interactions": int(len(interactions)),
            "interactions_path": str(out_dir / "interactions.csv"), "items_path": str(out_dir / "items.csv")}


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its finished children, in MiB (Linux reports KiB)."""
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run_scale(cfg: HyperrecConfig, out_dir: Path, settings: ScaleSettings | None = None) -> dict[str, object]:
    """Generate the synthetic data, run the quality benchmark on it, write and return ``scale.json``.

    Args:
        cfg: the configuration; its data section is replaced by the synthetic files.
        out_dir: where the raw data (``raw/``), the quality run (``quality/``) and ``scale.json`` go.
        settings: the generator settings; the defaults when None.

    Returns:
        The contents of ``scale.json``: settings, data shape, timings, peak RSS and threads.
    """
    from hyperrec.benchmarks.quality import run_quality

    settings = settings or ScaleSettings()
    out_dir = Path(out_dir)
    started = time.perf_counter()
    shape = synthetic_dataset(settings, out_dir / "raw")
    generated = time.perf_counter() - started
    data = cfg.data.model_copy(
        update={
            "format": "generic",
            "interactions_path": Path(str(shape["interactions_path"])),
            "items_path": Path(str(shape["items_path"])),
        }
    )
    summary = run_quality(cfg.model_copy(update={"data": data}), out_dir / "quality")
    result = {
        "synthetic": True,
        "settings": settings.model_dump(),
        "data": shape,
        "generate_seconds": round(generated, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": summary["benchmark"].get("stage_seconds"),
        "peak_rss_mib": peak_rss_mib(),
        "threads": cfg.threads,
    }
    (out_dir / SCALE_FILE).write_text(json.dumps(result, indent=1), encoding="utf-8")
    logger.info("scale run: %s", json.dumps(result))
    return result
