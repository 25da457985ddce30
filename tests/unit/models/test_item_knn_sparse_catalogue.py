"""Item-kNN on a catalogue where many items have no train user: the same neighbours as the dense rule."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hyperrec.models.item_knn import cosine_neighbours


def dense_reference(user_items: np.ndarray, k: int) -> np.ndarray:
    """Column j: the k largest positive cosine similarities of item j to the other items (by the
    definition)."""
    norms = np.linalg.norm(user_items, axis=0)
    unit = np.divide(user_items, norms, out=np.zeros_like(user_items), where=norms > 0)
    sim = unit.T @ unit
    np.fill_diagonal(sim, 0.0)
    out = np.zeros_like(sim)
    for j in range(sim.shape[1]):
        top = np.argsort(-sim[:, j], kind="stable")[:k]
        top = top[sim[top, j] > 0]
        out[top, j] = sim[top, j]
    return out


def test_items_without_train_users_get_no_neighbours_and_the_others_keep_theirs() -> None:
    rng = np.random.default_rng(0)
    user_items = (rng.random((40, 30)) < 0.2).astype(np.float32) * rng.integers(1, 4, (40, 30))
    user_items[:, ::3] = 0  # a third of the catalogue has no train user
    got = cosine_neighbours(sp.csr_matrix(user_items), k=4).toarray()
    np.testing.assert_allclose(got, dense_reference(user_items, 4), rtol=1e-5, atol=1e-6)
    assert not got[::3].any() and not got[:, ::3].any()


def test_a_catalogue_without_any_train_user_has_no_similarities() -> None:
    got = cosine_neighbours(sp.csr_matrix((5, 7), dtype=np.float32), k=3)
    assert got.shape == (7, 7) and got.nnz == 0
