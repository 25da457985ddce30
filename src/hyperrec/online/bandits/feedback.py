"""The records the bandit needs from serving: what was shown (``ServedItem``) and what came of it
(``Impression``).

A served record is written with every answer; an impression is that record joined with the user's feedback
by (request_id, item_id): ``clicked`` and, for the dwell reward, ``dwell_seconds``. Shown-but-not-clicked
items are impressions too (reward 0): without them no click rate can be learned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self


@dataclass(frozen=True)
class ServedItem:
    """One shown item of one answer, with what the policy knew when it chose it."""

    request_id: str
    policy: str
    item_id: str
    #: 0-based position in the answer.
    position: int
    #: 0-based rank of the item in the ranker's candidates.
    ranker_rank: int
    #: P(this item at this position) under ``policy``.
    propensity: float
    segment: int | None
    history_length: int
    #: context.candidate_features row (bias, score, rank, user_skipped, user_clicked) at serving time.
    item_features: tuple[float, ...]
    #: The user's pseudonym (None: anonymous): keys the user's own counts.
    user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["item_features"] = list(self.item_features)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str = "record") -> Self:
        """Validate a logged record (raises ValueError naming ``where`` and the field)."""
        return cls(**_served_fields(record, where))


@dataclass(frozen=True)
class Impression(ServedItem):
    """A served item and the user's response to it."""

    clicked: bool = False
    dwell_seconds: float | None = None

    @classmethod
    def from_served(
        cls, served: ServedItem, *, clicked: bool, dwell_seconds: float | None = None
    ) -> Impression:
        return cls(**{**asdict(served), "item_features": served.item_features}, clicked=clicked,
                   dwell_seconds=dwell_seconds)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str = "record") -> Self:
        fields = _served_fields(record, where)
        clicked = record.get("clicked")
        if not isinstance(clicked, bool):
            raise ValueError(f"{where}: clicked must be true or false")
        dwell = record.get("dwell_seconds")
        if dwell is not None and (not _number(dwell) or dwell < 0):
            raise ValueError(f"{where}: dwell_seconds must be a number >= 0 or null")
        return cls(**fields, clicked=clicked, dwell_seconds=None if dwell is None else float(dwell))


def reward_of(impression: Impression, kind: str, dwell_full_s: float) -> float:
    """click: 1 for a click. dwell: a click earns min(dwell / dwell_full_s, 1), a click without dwell 1."""
    if not impression.clicked:
        return 0.0
    if kind == "dwell" and impression.dwell_seconds is not None:
        return min(impression.dwell_seconds / dwell_full_s, 1.0)
    return 1.0


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _served_fields(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    def need(name: str, check: Any, what: str) -> Any:
        value = record.get(name)
        if not check(value):
            raise ValueError(f"{where}: {name} must be {what}, got {value!r}")
        return value

    def counter(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    features = need("item_features", lambda v: isinstance(v, list) and all(_number(x) for x in v),
                    "a list of numbers")
    return {
        "request_id": need("request_id", lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        "policy": need("policy", lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        "item_id": need("item_id", lambda v: isinstance(v, str) and v != "", "a non-empty string"),
        "position": need("position", counter, "an integer >= 0"),
        "ranker_rank": need("ranker_rank", counter, "an integer >= 0"),
        "propensity": float(need("propensity", lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]")),
        "segment": need("segment", lambda v: v is None or counter(v), "an integer >= 0 or null"),
        "history_length": need("history_length", counter, "an integer >= 0"),
        "item_features": tuple(float(x) for x in features),
        "user": need(
            "user", lambda v: v is None or (isinstance(v, str) and v != ""), "a non-empty string or null"
        ),
    }
