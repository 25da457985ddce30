"""Fixtures of the model tests; the prepared-folder writer is shared with the evaluation tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hyperrec.data.prepared import PreparedData

# The writer lives beside the evaluation tests; loading it by path keeps tests/ free of packages.
_SPEC = importlib.util.spec_from_file_location(
    "prepared_builder", Path(__file__).parents[1] / "evaluation" / "prepared_builder.py")
prepared_builder = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(prepared_builder)


@pytest.fixture
def random_data(tmp_path: Path) -> PreparedData:
    """60 users, 25 items with popularity skew."""
    return prepared_builder.random_prepared(tmp_path / "prepared", n_users=60, n_items=25, seed=3)


@pytest.fixture
def write_prepared():
    """The prepared-folder writer: ``write_prepared(root, n_items, train, validation, test)``."""
    return prepared_builder.write_prepared
