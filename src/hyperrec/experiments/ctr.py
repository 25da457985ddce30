"""Per-revision impressions and clicks from the feedback log (``hyperrec.online.feedback``).

The fields read from each record (one JSON object per line, as ``FeedbackLog`` writes them)::

    {"request_id": "...", "user": "<pseudonym>", "type": "impression" | "click" | ..., "item_id": "m1",
     "ts": 1732500000.0, "revision": "champion" | "challenger", ...}

- an impression is one distinct ``(request_id, item_id)`` with an ``impression`` event: the item was shown;
- a click counts once per shown ``(request_id, item_id)``; a click on a pair never shown (or shown by no
  revision) cannot be attributed and is counted in ``unattributed_clicks``;
- records without the variant field (written before serving recorded it) are counted in ``unlabelled``;
- ``since``: only events at or after this Unix time (the canary's start) count;
- ``versions``: ``{variant: model version}``; a record that names its ``model_version`` counts only for the
  variant serving that version (so one canary's counts never mix with the previous one's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperrec.experiments.sequential import ArmCounts

VARIANT_FIELD = "revision"


@dataclass
class VariantEvents:
    """What one variant showed and what was clicked, with the users and requests behind it."""

    shown: set[tuple[str, str]] = field(default_factory=set)
    clicked: set[tuple[str, str]] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    requests: set[str] = field(default_factory=set)

    def counts(self) -> ArmCounts:
        return ArmCounts(len(self.shown), len(self.clicked & self.shown))


@dataclass
class FeedbackTally:
    """The feedback log grouped by variant."""

    variants: dict[str, VariantEvents] = field(default_factory=dict)
    variants_of_user: dict[str, set[str]] = field(default_factory=dict)
    unlabelled: int = 0
    unattributed_clicks: int = 0

    def counts(self, variant: str) -> ArmCounts:
        events = self.variants.get(variant)
        return events.counts() if events else ArmCounts(0, 0)


def tally_feedback(records: Iterable[Mapping[str, Any]], *, variant_field: str = VARIANT_FIELD,
                   since: float | None = None, versions: Mapping[str, str] | None = None) -> FeedbackTally:
    """Group impression and click events by variant (see the module doc for the fields read).

    Args:
        records: feedback log records.
        variant_field: the record field naming the variant.
        since: only events at or after this Unix time count; None counts all.
        versions: variant -> model version; a record naming another version for its variant is skipped.

    Returns:
        Per variant the users, requests, shown and clicked pairs; plus unlabelled records, unattributed
        clicks and the variants each user saw.
    """
    tally = FeedbackTally()
    clicks: list[tuple[str, tuple[str, str]]] = []
    for record in records:
        if since is not None and float(record.get("ts", 0.0)) < since:
            continue
        variant = record.get(variant_field)
        if variant is None:
            tally.unlabelled += 1
            continue
        variant = str(variant)
        version = record.get("model_version")
        if versions and version is not None and variant in versions and str(version) != versions[variant]:
            continue
        events = tally.variants.setdefault(variant, VariantEvents())
        pair = (str(record["request_id"]), str(record["item_id"]))
        user = str(record.get("user", ""))
        events.users.add(user)
        events.requests.add(pair[0])
        tally.variants_of_user.setdefault(user, set()).add(variant)
        if record.get("type") == "impression":
            events.shown.add(pair)
        elif record.get("type") == "click":
            clicks.append((variant, pair))
    for variant, pair in clicks:
        events = tally.variants[variant]
        if pair in events.shown:
            events.clicked.add(pair)
        else:
            tally.unattributed_clicks += 1
    return tally
