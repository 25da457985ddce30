"""User-profile text for the text-reading models (bi-encoder user tower, cross-encoder).

Uses ``hyperrec.data.profiles.build_profile`` (the same text data prep writes to profiles.parquet and serving
builds from a request) when it is importable, and a minimal local equivalent otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

ProfileFn = Callable[[np.ndarray], str]


def _local_phrases(items: pd.DataFrame) -> list[str]:
    phrases = []
    for title, categories, text in zip(items["title"], items["categories"], items["text"]):
        tags = [t.strip() for t in str(text or "").split(",") if t.strip()][:3]
        details = "; ".join(p for p in (", ".join(map(str, list(categories))), ", ".join(tags)) if p)
        phrases.append(f"{title} ({details})" if details else str(title))
    return phrases


def profile_builder(items: pd.DataFrame, *, max_items: int, max_tokens: int) -> ProfileFn:
    """A function: history (item indices, oldest first) -> profile text, most recent items first.

    Args:
        items: the catalogue (``item_id``, ``item_idx``, and ``title``, ``categories``, ``text`` for the local
            fallback).
        max_items: the most history items a profile names.
        max_tokens: the profile's length limit.

    Returns:
        The function.
    """
    items = items.sort_values("item_idx").reset_index(drop=True)
    item_ids: Sequence[str] = items["item_id"].astype(str).tolist()
    try:
        from hyperrec.data.profiles import ItemTextLookup, build_profile
    except ImportError:  # pragma: no cover - data prep is part of the package
        build_profile = None
    if build_profile is not None:
        lookup = ItemTextLookup.from_items(items)

        def shared(history: np.ndarray) -> str:
            ids = [item_ids[i] for i in np.asarray(history, dtype=np.int64) if 0 <= i < len(item_ids)]
            return build_profile(ids, lookup, max_items=max_items, max_tokens=max_tokens)

        return shared

    phrases = _local_phrases(items)

    def local(history: np.ndarray) -> str:
        """The local profile text of one history.

        Args:
            history: item indices, oldest first.

        Returns:
            The phrases of the ``max_items`` most recent distinct items, newest first, cut to ``max_tokens``
            words.
        """
        seen: set[int] = set()
        pieces: list[str] = []
        for idx in np.asarray(history, dtype=np.int64)[::-1]:
            if 0 <= idx < len(phrases) and int(idx) not in seen:
                seen.add(int(idx))
                pieces.append(phrases[int(idx)])
            if len(pieces) >= max_items:
                break
        words = " | ".join(pieces).split()
        return " ".join(words[:max_tokens])

    return local
