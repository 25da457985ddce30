"""User-profile text: what a language model reads about a user.

``build_profile`` is shared by data prep (profiles.parquet, from train history) and serving (from the
history a request sends), so that a model sees the same kind of text in training and in production.
The most recent positive items come first, each as ``title (genres; top tags)``, then recent searches, and
the whole is cut to a token budget with the tokenizer the caller passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

#: Tags shown per item: the first comma-separated parts of the item text (most frequent tags first).
TOP_TAGS = 3
ITEM_SEPARATOR = " | "
SEARCH_PREFIX = "search: "


def whitespace_tokens(text: str) -> int:
    """Default token count: whitespace-separated words."""
    return len(text.split())


def describe_item(title: str, categories: Sequence[str], text: str, top_tags: int = TOP_TAGS) -> str:
    """``title (genre, genre; tag, tag)``, leaving out empty parts."""
    tags = [part.strip() for part in text.split(",") if part.strip()][:top_tags]
    details = "; ".join(part for part in (", ".join(categories), ", ".join(tags)) if part)
    return f"{title} ({details})" if details else title


@dataclass(frozen=True)
class ItemTextLookup:
    """item_id -> the item's profile phrase, built once from items.parquet for fast repeated profiles."""

    phrases: Mapping[str, str]

    @classmethod
    def from_items(cls, items: pd.DataFrame) -> ItemTextLookup:
        """From a frame with item_id, title, categories and text (the items.parquet columns)."""
        phrases = {
            str(item_id): describe_item(title, list(categories), text)
            for item_id, title, categories, text in zip(
                items["item_id"], items["title"], items["categories"], items["text"]
            )
        }
        return cls(phrases)


def build_profile(
    history: Sequence[str],
    items: ItemTextLookup | pd.DataFrame,
    queries: Sequence[str] = (),
    *,
    max_items: int,
    max_tokens: int,
    count_tokens: Callable[[str], int] = whitespace_tokens,
) -> str:
    """The profile text of one user.

    ``history``: positive item ids, oldest first; ``queries``: search queries, oldest first (PII-scrubbed
    by the caller, see ``hyperrec.data.text.scrub_text``). Items unknown to ``items`` are skipped and a
    repeated item appears once. Pieces are added most recent first while they fit ``max_tokens`` (as
    counted by ``count_tokens`` on the whole text); the first piece that does not fit is cut word by word.

    Args:
        history: positive item ids, oldest first.
        items: the item texts, as a lookup or an items table.
        queries: search queries, oldest first.
        max_items: the most items in the profile.
        max_tokens: the most tokens in the profile.
        count_tokens: counts the tokens of a text.

    Returns:
        The profile text ("" when nothing is known).
    """
    lookup = items if isinstance(items, ItemTextLookup) else ItemTextLookup.from_items(items)
    recent_items = [lookup.phrases[i] for i in _most_recent_unique(history) if i in lookup.phrases]
    recent_queries = _most_recent_unique([q for q in queries if q])
    pieces = recent_items[:max_items] + [SEARCH_PREFIX + q for q in recent_queries]
    profile = ""
    for piece in pieces:
        candidate = profile + ITEM_SEPARATOR + piece if profile else piece
        if count_tokens(candidate) <= max_tokens:
            profile = candidate
            continue
        return _longest_fitting_prefix(profile, piece, max_tokens, count_tokens)
    return profile


def _most_recent_unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in reversed(values)))


def _longest_fitting_prefix(profile: str, piece: str, max_tokens: int,
                            count_tokens: Callable[[str], int]) -> str:
    """``profile`` plus as many leading words of ``piece`` as fit, found by binary search."""
    words = piece.split()
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(_join(profile, words[:middle])) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return _join(profile, words[:low])


def _join(profile: str, words: list[str]) -> str:
    if not words:
        return profile
    tail = " ".join(words)
    return profile + ITEM_SEPARATOR + tail if profile else tail


def build_profiles(train: pd.DataFrame, searches: pd.DataFrame, lookup: ItemTextLookup, *, max_items: int,
                   max_tokens: int) -> pd.DataFrame:
    """profiles.parquet: per train user, the profile from train positives and searches made before the
    user's last train event (later searches would leak the future into training).

    Args:
        train: train positives: user_id, item_id, timestamp.
        searches: search events: user_id, query, timestamp.
        lookup: the item texts.
        max_items: the most items per profile.
        max_tokens: the most tokens per profile.

    Returns:
        One row per train user, sorted by user: user_id, profile.
    """
    last_train = train.groupby("user_id")["timestamp"].max()
    searches = searches[searches["timestamp"] <= searches["user_id"].map(last_train)]
    queries = (
        searches.sort_values(["user_id", "timestamp"], kind="stable").groupby("user_id")["query"].agg(list)
    )
    histories = train.groupby("user_id", sort=True)["item_id"].agg(list)
    profiles = [
        build_profile(history, lookup, queries.get(user, []), max_items=max_items, max_tokens=max_tokens)
        for user, history in histories.items()
    ]
    return pd.DataFrame({"user_id": histories.index.astype(str), "profile": profiles})
