"""Feedback joined to the served slates by request id: bandit impressions, OPE logs and training interactions.

Input: the feedback log (``hyperrec.online.feedback``), which holds both the transformer's served records
(``type: "impression"``, ``source: "served"``, see ``hyperrec.online.served``) and the clients' events
(``click``, ``dwell``, ``rating``, ``impression``). A shown item is one ``(request_id, item_id)`` of a served
record; it is ``clicked`` when a click on the same pair exists; its ``dwell_seconds`` is the sum of the pair's
dwell events. Shown-but-not-clicked items stay in the result with ``clicked = false``.

Training interactions, in the generic format ``hyperrec.data.readers`` reads
(``user_id, item_id, event, timestamp, value, dwell_seconds, query``):

- a clicked shown item → ``click`` (a positive, hyperrec.data.labels), with its dwell when reported;
- a shown item without a click → ``view`` with ``dwell_seconds = 0``: a labelled negative (a view counts as
  positive only at ``prep.min_dwell_seconds`` or more), which data prep keeps and never samples as a negative;
- a click on a pair no served record shows (answer from another replica, log rotated away) → ``click``:
  still a positive, counted in ``unattributed_clicks``;
- a ``rating`` event → ``rating`` with its value.

``user_id`` is the pseudonym the transformer logged (raw ids never reach the log).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hyperrec.data.pseudonymize import mark_pseudonym
from hyperrec.data.readers import INTERACTION_COLUMNS
from hyperrec.online.bandits.feedback import Impression
from hyperrec.online.bandits.ope import LoggedItem, LoggedRequest
from hyperrec.online.served import SERVED_SOURCE

Pair = tuple[str, str]


@dataclass(frozen=True)
class ShownItem:
    """One served impression record with the user's response to it."""

    record: Mapping[str, Any]
    clicked: bool
    dwell_seconds: float | None
    click_ts: float | None

    @property
    def request_id(self) -> str:
        return str(self.record["request_id"])

    @property
    def item_id(self) -> str:
        return str(self.record["item_id"])


@dataclass
class JoinedFeedback:
    """Every shown item with its outcome, and the client events that match no shown item."""

    shown: list[ShownItem] = field(default_factory=list)
    unattributed_clicks: list[Mapping[str, Any]] = field(default_factory=list)
    ratings: list[Mapping[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        clicked = sum(s.clicked for s in self.shown)
        return {"shown": len(self.shown), "clicked": clicked, "shown_not_clicked": len(self.shown) - clicked,
                "unattributed_clicks": len(self.unattributed_clicks), "ratings": len(self.ratings),
                "requests": len({s.request_id for s in self.shown})}


def join_feedback(records: Iterable[Mapping[str, Any]]) -> JoinedFeedback:
    """Join client events to the served records by ``(request_id, item_id)`` (see the module doc)."""
    served: dict[Pair, Mapping[str, Any]] = {}
    clicks: dict[Pair, Mapping[str, Any]] = {}
    dwell: dict[Pair, float] = {}
    result = JoinedFeedback()
    for record in records:
        pair = (str(record.get("request_id")), str(record.get("item_id")))
        kind = record.get("type")
        if kind == "impression" and record.get("source") == SERVED_SOURCE:
            served.setdefault(pair, record)
        elif kind == "click":
            first = clicks.get(pair)
            if first is None or float(record.get("ts", 0.0)) < float(first.get("ts", 0.0)):
                clicks[pair] = record
        elif kind == "dwell" and record.get("value") is not None:
            dwell[pair] = dwell.get(pair, 0.0) + float(record["value"])
        elif kind == "rating":
            result.ratings.append(record)
    for pair, record in served.items():
        click = clicks.get(pair)
        result.shown.append(ShownItem(record, click is not None, dwell.get(pair),
                                      None if click is None else float(click.get("ts", record["ts"]))))
    result.unattributed_clicks = [click for pair, click in clicks.items() if pair not in served]
    return result


def bandit_impressions(joined: JoinedFeedback) -> list[Impression]:
    """The shown items of bandit answers as ``Impression``s (what ``BanditReranker.update`` learns from)."""
    out = []
    for shown in joined.shown:
        record = shown.record
        if "item_features" not in record:
            continue
        out.append(
            Impression.from_dict(
                {**record, "clicked": shown.clicked, "dwell_seconds": shown.dwell_seconds},
                where=f"served record {shown.request_id}/{shown.item_id}",
            )
        )
    return out


def ope_requests(joined: JoinedFeedback, reward: str = "click") -> list[LoggedRequest]:
    """Bandit answers as the off-policy log of ``hyperrec.online.bandits.ope`` (candidates in ranker
    order)."""
    by_request: dict[str, list[ShownItem]] = {}
    for shown in joined.shown:
        by_request.setdefault(shown.request_id, []).append(shown)
    out = []
    for request_id, items in by_request.items():
        items.sort(key=lambda s: int(s.record["position"]))
        candidates = items[0].record.get("candidates")
        if candidates is None:
            continue
        out.append(LoggedRequest(
            request_id=request_id, policy=str(items[0].record["policy"]), candidates=tuple(candidates),
            slate=tuple(LoggedItem(s.item_id, int(s.record["position"]), float(s.record["propensity"]),
                                   1.0 if s.clicked else 0.0) for s in items),
        ))
    return out


def training_interactions(joined: JoinedFeedback) -> pd.DataFrame:
    """The generic interactions table (see the module doc), oldest first."""
    rows = []
    for shown in joined.shown:
        record = shown.record
        if shown.clicked:
            rows.append(_row(record, "click", shown.click_ts, dwell=shown.dwell_seconds))
        else:
            rows.append(_row(record, "view", float(record["ts"]), dwell=0.0))
    for click in joined.unattributed_clicks:
        rows.append(_row(click, "click", float(click["ts"])))
    for rating in joined.ratings:
        rows.append(_row(rating, "rating", float(rating["ts"]), value=rating.get("value")))
    frame = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))
    return frame.sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)


def _row(record: Mapping[str, Any], event: str, ts: float | None, *, dwell: float | None = None,
         value: Any = None) -> dict[str, Any]:
    return {"user_id": mark_pseudonym(str(record["user"])), "item_id": str(record["item_id"]), "event": event,
            "timestamp": int(ts if ts is not None else record["ts"]), "value": value, "dwell_seconds": dwell,
            "query": None}
