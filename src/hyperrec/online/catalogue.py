"""The served catalogue: items in model order plus the optional side files of a bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hyperrec.bundle_verify import ITEM_EMBEDDINGS_FILE, ITEMS_FILE, SEGMENT_POPULARITY_FILE, SEGMENTS_FILE
from hyperrec.errors import BundleError
from hyperrec.online.cold_items import COLD_SLOT_FILE, ColdSlot


@dataclass(frozen=True)
class Catalogue:
    """Items in catalogue order (index i = item_idx i = score column i)."""

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    popularity: np.ndarray
    #: L2-normalised item embeddings [n_items, dim] when the bundle ships them.
    embeddings: np.ndarray | None = None
    #: segment -> popularity over the whole catalogue (0 where the segment table lists nothing).
    segment_popularity: dict[int, np.ndarray] = field(default_factory=dict)
    #: pseudonymized user id -> segment.
    user_segments: dict[str, int] = field(default_factory=dict)
    #: The reserved rank for items without training history (hyperrec.online.cold_items), when the model has
    #: one.
    cold_slot: ColdSlot | None = None
    index: dict[str, int] = field(init=False)
    #: Per item, the codes of its categories (Python ints: the diversity pass counts them one by one).
    category_codes: tuple[tuple[int, ...], ...] = field(init=False)
    #: ``cold_slot.mask(n_items)``, built once (None without a slot).
    cold_mask: np.ndarray | None = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if not (len(self.titles) == len(self.categories) == len(self.popularity) == n):
            raise BundleError("catalogue columns differ in length")
        if self.embeddings is not None and self.embeddings.shape[0] != n:
            raise BundleError("item embeddings and items differ in length")
        if self.cold_slot is not None and self.cold_slot.items.size and int(self.cold_slot.items[-1]) >= n:
            raise BundleError(
                f"{COLD_SLOT_FILE} names item {int(self.cold_slot.items[-1])} of a {n}-item catalogue"
            )
        object.__setattr__(self, "index", {item_id: i for i, item_id in enumerate(self.item_ids)})
        names = sorted({c for cats in self.categories for c in cats})
        code = {name: i for i, name in enumerate(names)}
        object.__setattr__(
            self, "category_codes", tuple(tuple(code[c] for c in cats) for cats in self.categories)
        )
        object.__setattr__(self, "cold_mask", None if self.cold_slot is None else self.cold_slot.mask(n))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_categories(self) -> int:
        return 1 + max((max(codes) for codes in self.category_codes if codes), default=-1)

    @classmethod
    def from_frame(
        cls,
        items: pd.DataFrame,
        *,
        embeddings: np.ndarray | None = None,
        segment_popularity: pd.DataFrame | None = None,
        segments: pd.DataFrame | None = None,
        cold_slot: ColdSlot | None = None,
    ) -> Catalogue:
        """Build from items.parquet columns (item_id, title, categories, popularity, item_idx)."""
        frame = items.sort_values("item_idx", kind="stable").reset_index(drop=True)
        if not np.array_equal(frame["item_idx"].to_numpy(), np.arange(len(frame))):
            raise BundleError("items.item_idx must be 0..n-1")
        n = len(frame)
        normed = None
        if embeddings is not None:
            emb = np.asarray(embeddings, dtype=np.float32)
            normed = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        by_segment: dict[int, np.ndarray] = {}
        if segment_popularity is not None and not segment_popularity.empty:
            for segment, group in segment_popularity.groupby("segment"):
                vector = np.zeros(n, dtype=np.float64)
                idx = group["item_idx"].to_numpy(dtype=np.int64)
                keep = (idx >= 0) & (idx < n)
                vector[idx[keep]] = group["popularity"].to_numpy(dtype=np.float64)[keep]
                by_segment[int(segment)] = vector
        users: dict[str, int] = {}
        if segments is not None and not segments.empty:
            users = dict(zip(segments["user_id"].astype(str), segments["segment"].astype(int)))
        return cls(
            item_ids=tuple(frame["item_id"].astype(str)),
            titles=tuple(frame["title"].fillna("").astype(str)),
            categories=tuple(
                tuple(str(c) for c in (cats if cats is not None else ())) for cats in frame["categories"]
            ),
            popularity=frame["popularity"].to_numpy(dtype=np.float64),
            embeddings=normed,
            segment_popularity=by_segment,
            user_segments=users,
            cold_slot=cold_slot,
        )

    @classmethod
    def from_bundle(cls, root: Path) -> Catalogue:
        """Load items.parquet and the optional side files of a bundle folder."""
        root = Path(root)
        items = pd.read_parquet(root / ITEMS_FILE)
        emb_path = root / ITEM_EMBEDDINGS_FILE
        embeddings = np.load(emb_path, allow_pickle=False) if emb_path.exists() else None
        seg_pop = root / SEGMENT_POPULARITY_FILE
        seg = root / SEGMENTS_FILE
        return cls.from_frame(
            items,
            embeddings=embeddings,
            segment_popularity=pd.read_parquet(seg_pop) if seg_pop.exists() else None,
            segments=pd.read_parquet(seg) if seg.exists() else None,
            cold_slot=ColdSlot.read(root / COLD_SLOT_FILE) if (root / COLD_SLOT_FILE).exists() else None,
        )
