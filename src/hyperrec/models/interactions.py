"""Sparse user-item matrices shared by the classical baselines.

Every baseline fits on a binary users x items matrix of the train split and scores from a binary matrix of
the request histories: a repeated event counts once, so a user who re-watches an item does not outweigh the
rest of their history. Rows follow the given users, columns the catalogue order (item_idx).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from hyperrec.data.prepared import PreparedData
from hyperrec.errors import ModelError
from hyperrec.model_names import MODEL_FILE

#: File every saved model writes; its "model" key names the registry entry that can load it.


def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary float32 CSR matrix with one row per history."""
    indptr = np.zeros(len(histories) + 1, dtype=np.int64)
    columns = [np.unique(np.asarray(items, dtype=np.int64)) for items in histories]
    indptr[1:] = np.cumsum([len(c) for c in columns])
    indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise ModelError(f"history holds an item index outside the catalogue [0, {n_items})")
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(histories), n_items))


def train_matrix(data: PreparedData) -> sp.csr_matrix:
    """The train split as a binary users x items matrix (users in sorted id order)."""
    histories = data.histories(("train",))
    if not histories:
        raise ModelError("the train split is empty; nothing to fit")
    return history_matrix(list(histories.values()), data.n_items)


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Write ``model.json`` (creating the folder) so that the registry can find the class."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


def read_meta(directory: Path, expected: str) -> dict[str, Any]:
    """Read ``model.json`` and check that it belongs to the ``expected`` model."""
    path = directory / MODEL_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no saved model at {directory} ({MODEL_FILE} missing)") from None
    if meta.get("model") != expected:
        raise ModelError(f"{path} holds model {meta.get('model')!r}, not {expected!r}")
    return meta
