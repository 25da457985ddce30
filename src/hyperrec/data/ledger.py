"""Append-only JSON Lines ledgers under ``privacy.state_dir``: erasures, consent changes, audit entries.

An append is one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock`` and is ``fsync``ed
before it returns, so concurrent writers (the CLI, several transformer workers) never interleave lines and an
acknowledged entry survives a crash. Nothing here rewrites a ledger: it only grows.

The erasure ledger holds pseudonyms and times, never a raw id; it is the one place a forgotten user's
pseudonym stays, because data prep needs it to keep the user out of every later training run. The ledgers live
with the data they govern: data prep reads them (``hyperrec.data.privacy_filter``), and ``hyperrec.privacy``
(erasure, the serving guard, the audit log) writes them.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.errors import DataError

ERASURE_LEDGER = "erasure_ledger.jsonl"
CONSENT_LEDGER = "consent.jsonl"
AUDIT_LOG = "audit.jsonl"


def state_dir(cfg: HyperrecConfig) -> Path:
    """``privacy.state_dir``, or ``privacy`` beside the output folder (outside anything a run rewrites)."""
    configured = cfg.privacy.state_dir
    return (configured if configured is not None else cfg.output_dir.parent / "privacy").expanduser()


def append_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Append records durably (one write, flock, fsync); returns how many were written."""
    payload = "".join(json.dumps(dict(r), separators=(",", ":"), sort_keys=True) + "\n" for r in records)
    if not payload:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(payload.encode("utf-8"))
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return payload.count("\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a ledger (none when it does not exist); a bad line is a DataError naming it."""
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number}: not a JSON object")
        records.append(record)
    return records


@dataclass(frozen=True)
class ErasureLedger:
    """Who was forgotten and when: ``{"pseudonym": ..., "erased_at": unix}`` per line."""

    path: Path

    @classmethod
    def of(cls, cfg: HyperrecConfig) -> ErasureLedger:
        return cls(state_dir(cfg) / ERASURE_LEDGER)

    def record(self, pseudonyms: Iterable[str], now: float | None = None) -> int:
        stamp = time.time() if now is None else now
        return append_jsonl(self.path, ({"pseudonym": p, "erased_at": stamp} for p in pseudonyms))

    def pseudonyms(self) -> set[str]:
        return {str(r["pseudonym"]) for r in read_jsonl(self.path) if r.get("pseudonym")}


@dataclass(frozen=True)
class ConsentLedger:
    """Consent to personalization over time: ``{"pseudonym", "consent": bool, "at": unix}``; the latest
    wins."""

    path: Path

    @classmethod
    def of(cls, cfg: HyperrecConfig) -> ConsentLedger:
        return cls(state_dir(cfg) / CONSENT_LEDGER)

    def record(self, pseudonyms: Iterable[str], consent: bool, now: float | None = None) -> int:
        stamp = time.time() if now is None else now
        return append_jsonl(
            self.path, ({"pseudonym": p, "consent": consent, "at": stamp} for p in pseudonyms)
        )

    def withdrawn(self) -> set[str]:
        """Pseudonyms whose latest entry withdraws consent."""
        latest: dict[str, bool] = {}
        for record in read_jsonl(self.path):
            if record.get("pseudonym"):
                latest[str(record["pseudonym"])] = bool(record.get("consent"))
        return {p for p, consent in latest.items() if not consent}
