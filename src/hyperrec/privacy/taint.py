"""Which registered model versions learned from a forgotten user, marked in the MLflow registry.

Lineage: every registered version carries ``hyperrec.data_report_sha256``, the hash of the data report of the
prepared data it was trained on. Before the prepared data is scrubbed, ``data_holding`` hashes the reports of
the prepared-data folders that hold a forgotten pseudonym; a version with one of those hashes is tainted. A
version whose prepared data cannot be found locally (a cluster run, a deleted folder) and that was registered
before the erasure is tainted too: absence of the user cannot be shown, so it is assumed. Tags never name the
user. The next retraining (the ledger keeps the user out of its data) registers an untainted version that
replaces the tainted one through the usual challenger → champion path.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from hyperrec.data import prepared

logger = logging.getLogger(__name__)

TAINTED_TAG = "hyperrec.privacy.tainted"
TAINTED_AT_TAG = "hyperrec.privacy.tainted_at"
TAINT_REASON_TAG = "hyperrec.privacy.taint_reason"
DATA_REPORT_TAG = "hyperrec.data_report_sha256"
HELD_USER = "its training data held a forgotten user"
UNKNOWN_DATA = "its training data is not available here and it predates the erasure"
#: Tables of a prepared-data folder that name users.
USER_TABLES = (prepared.INTERACTIONS_FILE, *(f"{s}.parquet" for s in prepared.SPLITS), prepared.EXAMPLES_FILE,
               prepared.PROFILES_FILE, prepared.SEGMENTS_FILE)


@dataclass(frozen=True)
class DataLineage:
    """Data-report hashes of the prepared-data folders found, and of those that hold a forgotten user."""

    known: frozenset[str]
    holding: frozenset[str]


def data_lineage(roots: Iterable[Path], pseudonyms: set[str]) -> DataLineage:
    """Scan every prepared-data folder (one with data_report.json) under ``roots``.

    Args:
        roots: the folders to search.
        pseudonyms: the forgotten users.

    Returns:
        The hashes of the data reports found, and of those whose data holds one of the users.
    """
    known, holding = set(), set()
    for root in roots:
        for report in Path(root).rglob(prepared.REPORT_JSON):
            if not any((report.parent / name).exists() for name in USER_TABLES):
                continue  # a copy of the report (an MLflow artifact), not the data
            digest = hashlib.sha256(report.read_bytes()).hexdigest()
            known.add(digest)
            if _holds(report.parent, pseudonyms):
                holding.add(digest)
    return DataLineage(frozenset(known), frozenset(holding))


def _holds(folder: Path, pseudonyms: set[str]) -> bool:
    for name in USER_TABLES:
        path = folder / name
        if path.exists():
            users = pq.read_table(path, columns=["user_id"]).column("user_id").to_pylist()
            if pseudonyms.intersection(users):
                return True
    return False


def taint_versions(tracking_uri: str, lineage: DataLineage, erased_at: float) -> list[dict[str, str]]:
    """Tag the versions that learned from the users; returns ``{"name", "version", "reason"}`` per version.

    Args:
        tracking_uri: the MLflow tracking (and registry) URI.
        lineage: the known data and the data holding the users.
        erased_at: the erasure's Unix time; a version of unknown data created by then is tainted too.

    Returns:
        One entry per tagged version.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(erased_at))
    tainted = []
    for model in client.search_registered_models():
        for mv in client.search_model_versions(f"name='{model.name}'"):
            reason = _reason(mv.tags.get(DATA_REPORT_TAG), mv.creation_timestamp / 1000.0, lineage, erased_at)
            if reason is None:
                continue
            for key, value in {TAINTED_TAG: "true", TAINTED_AT_TAG: stamp, TAINT_REASON_TAG: reason}.items():
                client.set_model_version_tag(model.name, mv.version, key, value)
            tainted.append({"name": model.name, "version": str(mv.version), "reason": reason})
            logger.warning("%s v%s is tainted: %s", model.name, mv.version, reason)
    return tainted


def _reason(digest: str | None, created: float, lineage: DataLineage, erased_at: float) -> str | None:
    if digest in lineage.holding:
        return HELD_USER
    if (digest is None or digest not in lineage.known) and created <= erased_at:
        return UNKNOWN_DATA
    return None


def tainted_aliases(tracking_uri: str) -> list[dict[str, str]]:
    """Aliases (champion, challenger) that still point at a tainted version: what a retraining must replace.

    Args:
        tracking_uri: the MLflow tracking (and registry) URI.

    Returns:
        One ``{"name", "alias", "version"}`` per such alias.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = []
    for model in client.search_registered_models():
        for alias, version in (model.aliases or {}).items():
            if client.get_model_version(model.name, version).tags.get(TAINTED_TAG) == "true":
                found.append({"name": model.name, "alias": alias, "version": str(version)})
    return found
