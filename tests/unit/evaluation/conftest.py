"""Fixtures of the evaluation tests: tiny prepared-data folders written straight to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from prepared_builder import random_prepared

from hyperrec.data.prepared import PreparedData


@pytest.fixture
def random_data(tmp_path: Path) -> PreparedData:
    """40 users, 30 items, one test item each."""
    return random_prepared(tmp_path / "prepared", n_users=40, n_items=30, seed=7)
