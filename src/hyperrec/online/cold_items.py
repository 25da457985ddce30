"""The cold-item slot: the best-scored item without training history may take one reserved place in the list.

Items without a train event are scored from their text alone, and such scores sit below the scores of items
with learned ID embeddings, so in a full ranking they never reach the top 10 (docs/BENCHMARKS.md, cold start).
Raising every cold score (an offset) lets a tenth of the catalogue crowd every list. The slot instead admits
at most ONE cold item, at rank ``position``, and only when its score plus the calibrated ``offset`` reaches
the score of the warm item it would displace there: the cost to warm users is bounded by the hits at that one
rank, and the offset, fitted on validation (``hyperrec.modeling.cold_items``), sets how often it fires.

``reserve_cold_slot`` is the one rule: ``NextItemRecommender.score`` (so the evaluation harness and early
stopping) and the serving transformer (``RecommendationService``) both call it, on the same scores, so a
served list and a benchmarked list cannot differ. It is idempotent: a list whose cold item already ranks
within ``position`` is left alone.

*Which* cold item is the slot's: by default the best-scored eligible one. A slot with ``vectors`` (the item
text embeddings, rows L2-normalized) chooses by the history instead: the eligible cold item whose text is
closest (cosine) to the mean text of the user's last ``window`` history items, a zero-shot choice that finds
the held-out target more often than the model's text-only score (docs/BENCHMARKS.md, cold start); it still
fires on that item's score plus the offset. Both the harness and the service pass the histories in.

Inputs it needs from a top-k predictor (instead of the full score vector): the best ``position`` eligible
warm items with their scores and the best eligible cold item with its score, scattered into a vector of
``-inf``; the rule reads nothing else. For a history-text slot the graph's cold item is the text choice
(``hyperrec.export.next_item_topk``), so the same holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperrec.errors import BundleError

#: Bundle extra file holding the slot (written by the export, read by the transformer's catalogue).
COLD_SLOT_FILE = "cold_slot.json"
#: Beside it, for a slot that chooses by the history: the item text vectors (float32, n_items x d).
COLD_VECTORS_FILE = "cold_slot_vectors.npy"
#: The two ways the slot chooses its cold item (``ColdSlot.chooser``).
CHOOSERS = ("score", "history_text")


@dataclass(frozen=True)
class ColdSlot:
    """Which items are cold, the rank the best of them may take, and the calibration offset of its score."""

    #: item_idx of the items without a train event (scored from text alone).
    items: np.ndarray
    #: 1-based rank the best cold item enters at (it pushes the warm item there one place down).
    position: int
    #: Added to the cold item's score before comparing it with the warm item at ``position``; +inf: always.
    offset: float
    #: Item text vectors (n_items x d, rows L2-normalized): choose the cold item by the history's text; None:
    #: the best-scored cold item.
    vectors: np.ndarray | None = None
    #: Most recent history items whose mean text vector chooses the cold item.
    window: int = 20

    def __post_init__(self) -> None:
        items = np.unique(np.asarray(self.items, dtype=np.int64))
        if self.position < 1:
            raise ValueError(f"cold slot position must be >= 1, got {self.position}")
        if math.isnan(self.offset):
            raise ValueError("cold slot offset must not be NaN")
        if self.window < 1:
            raise ValueError(f"cold slot window must be >= 1, got {self.window}")
        object.__setattr__(self, "items", items)
        if self.vectors is not None:
            vectors = np.asarray(self.vectors, dtype=np.float32)
            if vectors.ndim != 2 or (items.size and int(items[-1]) >= vectors.shape[0]):
                raise ValueError(f"cold slot vectors of shape {vectors.shape} do not cover its items")
            object.__setattr__(self, "vectors", vectors)

    @property
    def chooser(self) -> str:
        """``history_text`` when the slot chooses its item by the history's text, else ``score``."""
        return CHOOSERS[self.vectors is not None]

    def mask(self, n_items: int) -> np.ndarray:
        """Boolean mask of the cold items over a catalogue of ``n_items``."""
        if self.items.size and int(self.items[-1]) >= n_items:
            raise ValueError(f"cold item {int(self.items[-1])} is outside a catalogue of {n_items} items")
        mask = np.zeros(n_items, dtype=bool)
        mask[self.items] = True
        return mask

    def to_dict(self) -> dict[str, Any]:
        """The slot without its vectors (they are the model's text table, or ``COLD_VECTORS_FILE``)."""
        offset: float | str = (
            self.offset if math.isfinite(self.offset) else ("inf" if self.offset > 0 else "-inf")
        )
        return {"position": self.position, "offset": offset, "items": [int(i) for i in self.items],
                "chooser": self.chooser, "window": self.window}

    @classmethod
    def from_dict(cls, payload: dict[str, Any], vectors: np.ndarray | None = None) -> ColdSlot:
        """The slot of ``to_dict``; ``vectors`` are required by (and only kept for) a history-text chooser."""
        try:
            chooser = payload.get("chooser", "score")
            if chooser not in CHOOSERS or (chooser == "history_text") != (vectors is not None):
                raise ValueError(f"chooser {chooser!r} with{'out' if vectors is None else ''} vectors")
            return cls(
                items=np.asarray(payload["items"], dtype=np.int64),
                position=int(payload["position"]),
                offset=float(payload["offset"]),
                vectors=vectors,
                window=int(payload.get("window", 20)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"cold slot is malformed: {exc}") from exc

    def write(self, path: Path) -> list[str]:
        """Write the slot to ``path`` (and its vectors beside it); returns the names of the files written."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        if self.vectors is None:
            return [path.name]
        np.save(path.with_name(COLD_VECTORS_FILE), self.vectors)
        return [path.name, COLD_VECTORS_FILE]

    @classmethod
    def read(cls, path: Path, vectors_path: Path | None = None) -> ColdSlot:
        """The slot of ``write``; a history-text slot's vectors from ``vectors_path`` (default: beside it)."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            vectors = (np.load(vectors_path or path.with_name(COLD_VECTORS_FILE), allow_pickle=False)
                       if payload.get("chooser") == "history_text" else None)
        except (OSError, ValueError, AttributeError) as exc:
            raise BundleError(f"cannot read the cold slot {path}: {exc}") from exc
        return cls.from_dict(payload, vectors)


def reserve_cold_slot(scores: np.ndarray, slot: ColdSlot, eligible: np.ndarray | None = None,
                      histories: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Scores (1-D or [batch, n_items]) where, per row, the slot's cold item ranks at ``slot.position``
    when ``its score + slot.offset >= the score of the warm item ranked there``; otherwise unchanged.

    The cold item gets a score just above that warm item's, so it takes the place and the warm items from
    there on move one place down. Rows with fewer than ``position`` eligible warm items, with no eligible
    cold item, or whose chosen cold item already ranks within ``position`` are left as they are.
    ``eligible`` (same shape, or 1-D for every row) marks the candidates; default: every finite score.
    ``histories`` (one item_idx array per row, oldest first) are required by a history-text slot.
    """
    scores = np.asarray(scores)
    rows = np.atleast_2d(scores)
    out = rows.copy()
    cold = slot.mask(rows.shape[1])
    if not cold.any():
        return out.reshape(scores.shape)
    allowed = (
        np.isfinite(rows) if eligible is None else np.broadcast_to(eligible, rows.shape) & np.isfinite(rows)
    )
    chosen = choose_cold_items(rows, slot, allowed, histories)
    for row, (values, ok, item) in enumerate(zip(rows, allowed, chosen, strict=True)):
        promoted = promoted_score(values, ok, cold, int(item), slot.position, slot.offset)
        if promoted is not None:
            out[row, item] = promoted
    return out.reshape(scores.shape)


def choose_cold_items(rows: np.ndarray, slot: ColdSlot, allowed: np.ndarray,
                      histories: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Per row of ``rows`` [batch, n_items], the slot's eligible cold item (item_idx; -1: none): the
    best-scored one, or with ``slot.vectors`` the one outside the history closest in text to the row's last
    ``window`` history items (ties by the lower index; a row without history chooses none). History items may
    hold finite scores (the model's history penalty), so the text choice skips them itself."""
    cold_idx = slot.items[slot.items < rows.shape[1]]
    if not cold_idx.size:
        return np.full(rows.shape[0], -1, dtype=np.int64)
    ok = allowed[:, cold_idx]
    if slot.vectors is None:
        preference = np.where(ok, rows[:, cold_idx], -np.inf)
    else:
        if histories is None or len(histories) != rows.shape[0]:
            raise ValueError("a cold slot that chooses by the history's text needs one history per row")
        seen = np.stack([np.isin(cold_idx, np.asarray(h, dtype=np.int64)) for h in histories])
        preference = np.where(
            ok & ~seen, _history_vectors(histories, slot) @ slot.vectors[cold_idx].T, -np.inf
        )
    best = np.argmax(preference, axis=1)
    return np.where(np.isfinite(preference[np.arange(rows.shape[0]), best]), cold_idx[best], -1)


def _history_vectors(histories: Sequence[np.ndarray], slot: ColdSlot) -> np.ndarray:
    """[batch, d] summed text vectors of each history's last ``window`` known items (NaN rows: no history):
    against unit cold vectors the sum ranks like the mean's cosine, and it is what the exported graph
    computes."""
    assert slot.vectors is not None
    n_items, dim = slot.vectors.shape
    out = np.full((len(histories), dim), np.nan, dtype=np.float32)
    for row, history in enumerate(histories):
        items = np.asarray(history, dtype=np.int64)
        items = items[(items >= 0) & (items < n_items)][-slot.window:]
        if items.size:
            out[row] = slot.vectors[items].sum(axis=0)
    return out


def promoted_score(values: np.ndarray, ok: np.ndarray, cold: np.ndarray, item: int, position: int,
                    offset: float) -> float | None:
    """The new score of cold ``item`` in one row (``values``, candidates ``ok``, cold mask ``cold``): just
    above the warm item at rank ``position`` when ``values[item] + offset`` reaches it; None when the slot
    does not fire (or ``item`` is -1, none chosen)."""
    warm_idx = np.flatnonzero(ok & ~cold)
    if warm_idx.size < position or item < 0:
        return None
    kth_warm = float(np.partition(values[warm_idx], warm_idx.size - position)[warm_idx.size - position])
    cold_score = float(values[item])
    if cold_score >= kth_warm or cold_score + offset < kth_warm:
        return None  # already within the first k, or not confident enough to displace the k-th warm item
    return float(np.nextafter(values.dtype.type(kth_warm), values.dtype.type(np.inf)))
