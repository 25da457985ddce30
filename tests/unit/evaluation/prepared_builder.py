"""Write tiny prepared-data folders (the documented Parquet layout) so tests never need data prep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hyperrec.data.prepared import PreparedData

Events = Mapping[str, Sequence[int]]


def item_id(idx: int) -> str:
    return f"m{idx}"


def _split_frame(events: Events, first_timestamp: int) -> pd.DataFrame:
    """One row per (user, item_idx), timestamps increasing in the given order, after ``first_timestamp``."""
    rows = [
        (user, item_id(idx), idx, first_timestamp + position)
        for user, items in events.items()
        for position, idx in enumerate(items)
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "item_idx", "timestamp"])
    return frame.assign(
        item_idx=frame["item_idx"].astype(np.int32),
        timestamp=frame["timestamp"].astype(np.int64),
        event="rating",
        value=4.0,
        dwell_seconds=np.nan,
        query=None,
        label=True,
    )


def write_prepared(root: Path, n_items: int, train: Events, validation: Events | None = None,
                   test: Events | None = None) -> PreparedData:
    """A prepared folder with ``n_items`` items (ids ``m<idx>``) and the given per-user item indices.

    Train events precede validation events, which precede test events, as the split contract requires.
    """
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "item_id": [item_id(i) for i in range(n_items)],
        "title": [f"Movie {i}" for i in range(n_items)],
        "text": ["" for _ in range(n_items)],
        "categories": [["Drama"] for _ in range(n_items)],
        "language": "en",
        "item_idx": np.arange(n_items, dtype=np.int32),
    }).to_parquet(root / "items.parquet", index=False)
    for offset, (name, events) in enumerate((("train", train), ("validation", validation or {}),
                                             ("test", test or {}))):
        _split_frame(events, first_timestamp=1_000_000 * (offset + 1)).to_parquet(
            root / f"{name}.parquet", index=False)
    return PreparedData(root)


def random_prepared(root: Path, *, n_users: int, n_items: int, seed: int,
                    test_items: int = 1) -> PreparedData:
    """Leave-last-out-like data with popularity skew: per user a few train items, one validation item and
    ``test_items`` test items, all distinct."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1)
    weights /= weights.sum()
    train, validation, test = {}, {}, {}
    for u in range(n_users):
        size = int(rng.integers(3, 9)) + 1 + test_items
        items = rng.choice(n_items, size=size, replace=False, p=weights).tolist()
        user = f"u{u:03d}"
        train[user] = items[: size - 1 - test_items]
        validation[user] = items[size - 1 - test_items: size - test_items]
        test[user] = items[size - test_items:]
    return write_prepared(root, n_items, train, validation, test)
