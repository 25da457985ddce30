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

Inputs it needs from a top-k predictor (instead of the full score vector): the best ``position`` eligible
warm items with their scores and the best eligible cold item with its score, scattered into a vector of
``-inf``; the rule reads nothing else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperrec.errors import BundleError

#: Bundle extra file holding the slot (written by the export, read by the transformer's catalogue).
COLD_SLOT_FILE = "cold_slot.json"


@dataclass(frozen=True)
class ColdSlot:
    """Which items are cold, the rank the best of them may take, and the calibration offset of its score."""

    #: item_idx of the items without a train event (scored from text alone).
    items: np.ndarray
    #: 1-based rank the best cold item enters at (it pushes the warm item there one place down).
    position: int
    #: Added to the cold item's score before comparing it with the warm item at ``position``; +inf: always.
    offset: float

    def __post_init__(self) -> None:
        items = np.unique(np.asarray(self.items, dtype=np.int64))
        if self.position < 1:
            raise ValueError(f"cold slot position must be >= 1, got {self.position}")
        if math.isnan(self.offset):
            raise ValueError("cold slot offset must not be NaN")
        object.__setattr__(self, "items", items)

    def mask(self, n_items: int) -> np.ndarray:
        """Boolean mask of the cold items over a catalogue of ``n_items``."""
        if self.items.size and int(self.items[-1]) >= n_items:
            raise ValueError(f"cold item {int(self.items[-1])} is outside a catalogue of {n_items} items")
        mask = np.zeros(n_items, dtype=bool)
        mask[self.items] = True
        return mask

    def to_dict(self) -> dict[str, Any]:
        offset: float | str = self.offset if math.isfinite(self.offset) else ("inf" if self.offset > 0 else "-inf")
        return {"position": self.position, "offset": offset, "items": [int(i) for i in self.items]}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ColdSlot:
        try:
            return cls(items=np.asarray(payload["items"], dtype=np.int64), position=int(payload["position"]),
                       offset=float(payload["offset"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"cold slot is malformed: {exc}") from exc

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ColdSlot:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"cannot read the cold slot {path}: {exc}") from exc
        return cls.from_dict(payload)


def reserve_cold_slot(scores: np.ndarray, slot: ColdSlot, eligible: np.ndarray | None = None) -> np.ndarray:
    """Scores (1-D or [batch, n_items]) where, per row, the best eligible cold item ranks at ``slot.position``
    when ``its score + slot.offset >= the score of the warm item ranked there``; otherwise unchanged.

    The cold item gets a score just above that warm item's, so it takes the place and the warm items from
    there on move one place down. Rows with fewer than ``position`` eligible warm items, with no eligible
    cold item, or whose best cold item already ranks within ``position`` are left as they are.
    ``eligible`` (same shape, or 1-D for every row) marks the candidates; default: every finite score.
    """
    scores = np.asarray(scores)
    rows = np.atleast_2d(scores)
    out = rows.copy()
    cold = slot.mask(rows.shape[1])
    if not cold.any():
        return out.reshape(scores.shape)
    allowed = np.isfinite(rows) if eligible is None else np.broadcast_to(eligible, rows.shape) & np.isfinite(rows)
    for row, (values, ok) in enumerate(zip(rows, allowed, strict=True)):
        promoted = _promoted_score(values, ok, cold, slot)
        if promoted is not None:
            out[row, promoted[0]] = promoted[1]
    return out.reshape(scores.shape)


def _promoted_score(values: np.ndarray, ok: np.ndarray, cold: np.ndarray,
                    slot: ColdSlot) -> tuple[int, float] | None:
    """(cold item, its new score) for one row, or None when the slot does not fire."""
    warm_idx = np.flatnonzero(ok & ~cold)
    cold_idx = np.flatnonzero(ok & cold)
    k = slot.position
    if warm_idx.size < k or cold_idx.size == 0:
        return None
    best_cold = int(cold_idx[np.argmax(values[cold_idx])])
    kth_warm = float(np.partition(values[warm_idx], warm_idx.size - k)[warm_idx.size - k])
    cold_score = float(values[best_cold])
    if cold_score >= kth_warm or cold_score + slot.offset < kth_warm:
        return None  # already within the first k, or not confident enough to displace the k-th warm item
    return best_cold, float(np.nextafter(values.dtype.type(kth_warm), values.dtype.type(np.inf)))
