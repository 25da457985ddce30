"""Helpers of the modelling tests: tiny prepared-data folders with the documented columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hyperrec.data.prepared import PreparedData

GENRES = ["drama", "comedy", "action", "horror", "romance"]
WORDS = ["love", "war", "night", "city", "story", "world", "girl", "boy", "house", "time"]


def write_prepared(root: Path, sequences: dict[str, list[int]], n_items: int, *,
                   segments: dict[str, int] | None = None) -> PreparedData:
    """Write a leave-last-out prepared folder with the documented columns: per user, the last item is the
    test event, the one before validation, the rest train. Item i has a title/genre/tags derived from i."""
    root.mkdir(parents=True, exist_ok=True)
    items = pd.DataFrame({
        "item_id": [f"m{i}" for i in range(n_items)],
        "title": [f"{WORDS[i % len(WORDS)]} {WORDS[(i // len(WORDS)) % len(WORDS)]} ({1990 + i})"
                  for i in range(n_items)],
        "text": [f"{WORDS[(i * 3) % len(WORDS)]}, {GENRES[i % len(GENRES)]} movie" for i in range(n_items)],
        "categories": [[GENRES[i % len(GENRES)]] for i in range(n_items)],
        "language": "en",
        "item_idx": np.arange(n_items, dtype=np.int32),
    })
    items.to_parquet(root / "items.parquet", index=False)
    rows = {"train": [], "validation": [], "test": []}
    for user, seq in sequences.items():
        for pos, item in enumerate(seq):
            split = "test" if pos == len(seq) - 1 else "validation" if pos == len(seq) - 2 else "train"
            rows[split].append({"user_id": user, "item_id": f"m{item}", "item_idx": np.int32(item),
                                "timestamp": np.int64(1_000_000 + pos * 60), "event": "rating", "value": 4.0,
                                "label": True})
    for split, split_rows in rows.items():
        pd.DataFrame(split_rows).astype({"item_idx": "int32", "timestamp": "int64"}).to_parquet(
            root / f"{split}.parquet", index=False)
    users = sorted(sequences)
    segs = segments or {u: i % 2 for i, u in enumerate(users)}
    pd.DataFrame({"user_id": users, "segment": [segs[u] for u in users]}).to_parquet(
        root / "segments.parquet", index=False)
    return PreparedData(root)


def cyclic_sequences(n_users: int, n_items: int, length: int, seed: int = 0, *, step: int = 1,
                     skip: set[int] | None = None) -> dict[str, list[int]]:
    """Every user walks the catalogue i -> i+step (mod n) from a random start: a deterministic pattern."""
    rng = np.random.default_rng(seed)
    skip = skip or set()
    cycle = [i for i in range(n_items) if i not in skip]
    out = {}
    for u in range(n_users):
        start = int(rng.integers(len(cycle)))
        out[f"u{u:03d}"] = [cycle[(start + step * k) % len(cycle)] for k in range(length)]
    return out
