"""The synthetic scale data: the generic format, the asked shape, and the skew of real logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hyperrec.benchmarks.scale import ScaleSettings, synthetic_dataset


def test_synthetic_data_has_the_shape_and_skew_asked_for(tmp_path: Path) -> None:
    settings = ScaleSettings(n_items=500, n_interactions=20_000, n_users=400, n_topics=5)
    shape = synthetic_dataset(settings, tmp_path)
    events = pd.read_csv(shape["interactions_path"])
    items = pd.read_csv(shape["items_path"])
    assert list(events.columns) == ["user_id", "item_id", "event", "timestamp"]
    assert list(items.columns) == ["item_id", "title", "text", "categories"] and len(items) == 500
    assert len(events) == 20_000 and events["user_id"].nunique() == 400
    assert events.groupby("user_id").size().min() >= 3
    popularity = events["item_id"].value_counts()
    assert popularity.iloc[:50].sum() > 0.3 * len(events)  # the top 10% of items draw a large share
    assert events.groupby("user_id")["timestamp"].is_monotonic_increasing.all()
    again = synthetic_dataset(settings, tmp_path / "again")
    assert pd.read_csv(again["interactions_path"]).equals(events)  # seeded
