"""Training-data balancing: users of smaller groups repeat under copy ids in the training tables only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hyperrec.data.balancing import BalancedData, balanced_training_data, group_copies
from hyperrec.data.prepared import PreparedData
from hyperrec.fairness_settings import FairnessConfig
from tests.unit.evaluation.prepared_builder import write_prepared


@pytest.fixture
def data(tmp_path: Path) -> PreparedData:
    """Six users in segment 0, two in segment 1; every user has a validation item."""
    train = {f"u{i}": [i, i + 1, i + 2] for i in range(8)}
    prepared = write_prepared(tmp_path / "prepared", 20, train, validation={f"u{i}": [15] for i in range(8)})
    pd.DataFrame({"user_id": [f"u{i}" for i in range(8)], "segment": [0] * 6 + [1] * 2}).to_parquet(
        tmp_path / "prepared" / "segments.parquet", index=False)
    return prepared


def test_copies_even_out_group_sizes_within_the_bounds():
    labels = pd.Series([0] * 6 + [1] * 2 + [2], index=[f"u{i}" for i in range(9)])
    assert group_copies(labels, 1.0, 5) == {**{f"u{i}": 1 for i in range(6)}, "u6": 3, "u7": 3, "u8": 5}
    assert group_copies(labels, 0.5, 5)["u8"] == 2  # sqrt(6) rounds to 2
    assert group_copies(labels, 1.0, 2)["u8"] == 2


def test_balanced_data_repeats_the_small_segment_in_training_tables_only(data):
    balanced = balanced_training_data(data, FairnessConfig(balancing="segments"))
    assert isinstance(balanced, BalancedData)
    histories = balanced.histories(("train",))
    assert sorted(histories) == sorted([f"u{i}" for i in range(8)] + ["u6~1", "u6~2", "u7~1", "u7~2"])
    assert histories["u7~2"].tolist() == histories["u7"].tolist() == [7, 8, 9]
    assert balanced.segments.set_index("user_id").loc["u6~1", "segment"] == 1
    assert len(balanced.split("validation")) == 8  # evaluation and early stopping see only real users


def test_balancing_off_returns_the_data_itself(data):
    assert balanced_training_data(data, FairnessConfig()) is data


def test_activity_balancing_groups_by_train_events(tmp_path):
    train = {"heavy": list(range(30)), **{f"light{i}": list(range(25)) for i in range(3)}, "new": [1, 2]}
    data = write_prepared(tmp_path / "p", 40, train)
    cfg = FairnessConfig(balancing="activity", activity_new_below=20, activity_heavy_from=30)
    balanced = balanced_training_data(data, cfg)
    users = set(balanced.histories(("train",)))
    assert {"new~1", "new~2", "heavy~1", "heavy~2"} <= users and not any(u.startswith("light") and "~" in u
                                                                             for u in users)
