"""Negatives: never an item the user touched, distinct per row, seeded, popularity-weighted on request."""

import numpy as np
import pandas as pd
import pytest

from hyperrec.data.examples import build_examples
from hyperrec.errors import DataError


def _train(rows: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_idx"]).assign(timestamp=np.arange(len(rows)))


def _touched_by(examples: pd.DataFrame, touched: pd.DataFrame) -> bool:
    seen = set(zip(touched["user_id"], touched["item_idx"]))
    return any((u, int(n)) in seen for u, row in zip(examples["user_id"], examples["negatives"]) for n in row)


def test_one_row_per_train_positive_with_k_distinct_untouched_negatives():
    rng = np.random.default_rng(0)
    train = _train([(f"u{u}", int(i)) for u in range(20) for i in rng.choice(30, 8, replace=False)])
    touched = pd.concat([train[["user_id", "item_idx"]],
                         pd.DataFrame({"user_id": ["u0"] * 5, "item_idx": [25, 26, 27, 28, 29]})])
    examples = build_examples(
        train, touched, n_items=30, negatives_per_positive=4, sampling="uniform", seed=1
    )
    assert len(examples) == len(train)
    assert examples["item_idx"].tolist() == train["item_idx"].tolist()
    assert all(len(set(row)) == 4 for row in examples["negatives"])
    assert not _touched_by(examples, touched)
    assert examples["negatives"].iloc[0].dtype == np.int32


def test_sampling_is_seeded():
    train = _train([("a", 1), ("a", 2), ("b", 3)])
    first = build_examples(train, train, 50, 3, "uniform", seed=7)
    again = build_examples(train, train, 50, 3, "uniform", seed=7)
    assert [r.tolist() for r in first["negatives"]] == [r.tolist() for r in again["negatives"]]


def test_popularity_sampling_only_draws_items_seen_in_train():
    train = _train([("a", 0), ("b", 1), ("b", 2), ("c", 2), ("d", 3), ("e", 3), ("e", 4)])
    examples = build_examples(
        train, train, n_items=100, negatives_per_positive=2, sampling="popularity", seed=0
    )
    assert set(np.concatenate(examples["negatives"].to_list())) <= {0, 1, 2, 3, 4}
    assert not _touched_by(examples, train)


def test_a_user_who_touched_almost_everything_gets_the_remaining_items():
    train = _train([("a", 0), ("a", 1), ("a", 2), ("a", 3)])
    examples = build_examples(train, train, n_items=6, negatives_per_positive=2, sampling="uniform", seed=0)
    assert all(sorted(row.tolist()) == [4, 5] for row in examples["negatives"])


def test_a_user_who_touched_every_item_is_a_data_error():
    train = _train([("a", 0), ("a", 1)])
    with pytest.raises(DataError, match="every item"):
        build_examples(train, train, n_items=2, negatives_per_positive=1, sampling="uniform", seed=0)
