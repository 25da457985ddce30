"""``forget``: erase users everywhere hyperrec keeps them, then check that nothing still names them.

Order matters: the erasure ledger first (so that a crash half-way still keeps the users out of the next
training run and a rerun finishes the job), then the lineage of the prepared data (which models learned from
the users: read before the data is scrubbed), then the files, the feedback log and the bandit state. Last, a
scan of every file left under the scrubbed folders: what still holds a pseudonym is reported, never hidden.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from hyperrec.config import HyperrecConfig
from hyperrec.data.ledger import ErasureLedger, state_dir
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.errors import DataError
from hyperrec.privacy.bandit_state import forget_in_store, local_store_folder
from hyperrec.privacy.rewrite import filter_lines, filter_parquet, mentions
from hyperrec.privacy.taint import data_lineage, taint_versions

logger = logging.getLogger(__name__)

LINE_SUFFIXES = frozenset({".jsonl", ".csv", ".tsv", ".ndjson"})
FEEDBACK_PREFIX = "feedback-"


@dataclass
class ErasureReport:
    """What ``forget`` did: counts per place, the tainted model versions and any residue (files still naming
    a user, which a person must look at)."""

    users: int
    erased_at: float
    files_rewritten: dict[str, int] = field(default_factory=dict)
    feedback_lines_removed: int = 0
    bandit_keys_removed: int = 0
    tainted_versions: list[dict[str, str]] = field(default_factory=list)
    residue: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pseudonyms_of(cfg: HyperrecConfig, raw_ids: Iterable[str]) -> set[str]:
    """The pseudonyms of raw user ids (stripped, as data prep and serving strip them); empty ids refused."""
    pseudonymizer = Pseudonymizer.from_config(cfg.privacy)
    out = set()
    for number, raw in enumerate(raw_ids, start=1):
        text = str(raw).strip()
        if not text:
            raise DataError(f"user id #{number} is empty")
        out.add(pseudonymizer.pseudonymize(text))
    return out


def scrub_roots(cfg: HyperrecConfig) -> list[Path]:
    """Folders whose files may name users: the outputs (prepared data, models, evaluations, bundles, the local
    MLflow database and artifacts) and the MLflow artifact root when it is a local folder elsewhere."""
    roots = [cfg.output_dir.parent.resolve()]
    artifacts = _local_artifact_root(cfg)
    if artifacts is not None and not artifacts.is_relative_to(roots[0]):
        roots.append(artifacts)
    return [r for r in roots if r.exists()]


def forget(cfg: HyperrecConfig, raw_ids: Iterable[str], *, extra_roots: Iterable[Path] = ()) -> ErasureReport:
    """Erase the users of ``raw_ids`` (see the module doc); returns the report."""
    pseudonyms = pseudonyms_of(cfg, raw_ids)
    if not pseudonyms:
        raise DataError("no user ids to forget")
    erased_at = time.time()
    ErasureLedger.of(cfg).record(sorted(pseudonyms), now=erased_at)
    roots = [*scrub_roots(cfg), *(Path(r).resolve() for r in extra_roots if Path(r).exists())]
    report = ErasureReport(users=len(pseudonyms), erased_at=erased_at)
    report.tainted_versions = taint_versions(cfg.mlflow_uri(), data_lineage(roots, pseudonyms), erased_at)
    skip = state_dir(cfg).resolve()
    report.feedback_lines_removed = forget_feedback(Path(cfg.serving.feedback_dir), pseudonyms)
    for root in roots:
        report.files_rewritten.update(scrub_tree(root, pseudonyms, skip=skip))
    report.bandit_keys_removed = forget_in_store(cfg.bandit, pseudonyms)
    store = local_store_folder(cfg.bandit)
    checked = [*roots, Path(cfg.serving.feedback_dir), *([store] if store is not None else [])]
    report.residue = residue(checked, pseudonyms, skip=skip)
    logger.info(
        "forgot %d user(s): %d files rewritten, %d feedback lines, %d bandit keys, %d tainted versions, "
        "%d files with residue",
        len(pseudonyms),
        len(report.files_rewritten),
        report.feedback_lines_removed,
        report.bandit_keys_removed,
        len(report.tainted_versions),
        len(report.residue),
    )
    return report


def forget_feedback(feedback_dir: Path, pseudonyms: set[str]) -> int:
    """Rewrite the feedback log's segments without the users' lines (under the writers' lock)."""
    if not feedback_dir.is_dir():
        return 0
    test = mentions(pseudonyms)
    return sum(
        filter_lines(path, test, lock=True) for path in sorted(feedback_dir.glob(f"{FEEDBACK_PREFIX}*.jsonl"))
    )


def scrub_tree(root: Path, pseudonyms: set[str], *, skip: Path) -> dict[str, int]:
    """Rewrite every Parquet table and line file under ``root`` without the users' rows; file → rows
    removed."""
    test = mentions(pseudonyms)
    rewritten = {}
    for path in _files(root, skip):
        if path.suffix == ".parquet":
            removed = filter_parquet(path, pseudonyms)
        elif path.suffix in LINE_SUFFIXES:
            removed = filter_lines(path, test, lock=path.name.startswith(FEEDBACK_PREFIX))
        else:
            continue
        if removed:
            rewritten[str(path)] = removed
    return rewritten


def residue(roots: Iterable[Path], pseudonyms: set[str], *, skip: Path) -> list[str]:
    """Files under ``roots`` that still hold a pseudonym: Parquet cells, or the bytes of any other file."""
    needles = [p.encode("ascii") for p in pseudonyms]
    found = []
    for root in roots:
        for path in _files(root, skip) if root.exists() else ():
            if path.suffix == ".parquet":
                hit = _parquet_holds(path, pseudonyms)
            else:
                data = path.read_bytes()
                hit = any(n in data for n in needles)
            if hit:
                found.append(str(path))
    return sorted(set(found))


def _parquet_holds(path: Path, pseudonyms: set[str]) -> bool:
    table = pq.read_table(path)
    for column in table.column_names:
        values = table.column(column).to_pylist()
        if any(isinstance(v, str) and any(p in v for p in pseudonyms) for v in values):
            return True
    return False


def _files(root: Path, skip: Path) -> Iterable[Path]:
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.resolve().is_relative_to(skip):
            yield path


def _local_artifact_root(cfg: HyperrecConfig) -> Path | None:
    """The experiment's artifact folder when MLflow keeps artifacts on this machine (file: URI)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    import mlflow

    mlflow.set_tracking_uri(cfg.mlflow_uri())
    experiment = mlflow.get_experiment_by_name(cfg.tracking.experiment)
    if experiment is None or not experiment.artifact_location.startswith("file:"):
        return None
    return Path(url2pathname(urlparse(experiment.artifact_location).path)).resolve()
