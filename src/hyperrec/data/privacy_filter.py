"""What data prep drops for privacy, before anything else sees the events: forgotten users (the erasure
ledger), users who did not consent to personalization (the ``consent`` column of the generic format and the
consent ledger) and events older than the retention window. Each is counted in the data report; none goes to
the quarantine, which would keep a copy of exactly the rows that must go.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from hyperrec.config import HyperrecConfig
from hyperrec.data.ledger import ConsentLedger, ErasureLedger

#: Optional column of the generic interactions format (docs/DATA.md).
CONSENT_COLUMN = "consent"
_YES = frozenset({"true", "1", "yes", "y"})
_NO = frozenset({"false", "0", "no", "n"})
SECONDS_PER_DAY = 86_400


def parse_consent(values: pd.Series) -> pd.Series:
    """True / False for yes-like / no-like cells, None where empty or unreadable (the caller tells them
    apart)."""

    def one(value: Any) -> bool | None:
        text = str(value).strip().lower() if value is not None else ""
        return True if text in _YES else False if text in _NO else None

    return values.astype(object).map(one).astype(object)


def retention_cutoff(cfg: HyperrecConfig) -> float | None:
    """Unix time before which events are too old to keep (None: no retention window)."""
    days = cfg.privacy.retention_days
    if days is None:
        return None
    now = cfg.privacy.retention_now_unix if cfg.privacy.retention_now_unix is not None else time.time()
    return float(now) - days * SECONDS_PER_DAY


def privacy_filter(cfg: HyperrecConfig, interactions: pd.DataFrame,
                   has_timestamps: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """The interactions without forgotten users, non-consenting users and expired events; and the counts.

    A user is left out for lack of consent when any of their rows says ``consent=false`` or their latest
    consent-ledger entry withdraws it. Returns the frame without the consent column.
    """
    erased = ErasureLedger.of(cfg).pseudonyms()
    withdrawn = set(ConsentLedger.of(cfg).withdrawn())
    if CONSENT_COLUMN in interactions.columns:
        said_no = interactions[CONSENT_COLUMN].map(lambda v: v is False)
        withdrawn |= set(interactions.loc[said_no, "user_id"])
    is_erased = interactions["user_id"].isin(erased)
    no_consent = ~is_erased & interactions["user_id"].isin(withdrawn)
    cutoff = retention_cutoff(cfg)
    expired = pd.Series(False, index=interactions.index)
    if cutoff is not None and has_timestamps:
        expired = ~is_erased & ~no_consent & (interactions["timestamp"] < cutoff)
    keep = ~(is_erased | no_consent | expired)
    counts = {
        "erased_events": int(is_erased.sum()),
        "erased_users": int(interactions.loc[is_erased, "user_id"].nunique()),
        "no_consent_events": int(no_consent.sum()),
        "no_consent_users": int(interactions.loc[no_consent, "user_id"].nunique()),
        "expired_events": int(expired.sum()),
        "ledger_erasures": len(erased),
    }
    if cutoff is not None:
        counts["retention_cutoff_unix"] = int(cutoff)
    kept = interactions[keep].drop(columns=[CONSENT_COLUMN], errors="ignore")
    return kept.reset_index(drop=True), counts
