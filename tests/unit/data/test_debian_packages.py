"""The second dataset: Debian's package index as users (packages) and items (the packages they relate to)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hyperrec.config import HyperrecConfig
from hyperrec.data.debian_packages import build_debian_dataset, parse_stanzas, relation_names
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import load_generic
from hyperrec.errors import DataError
from hyperrec.hashing import sha256_file

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "debian" / "Packages"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_relation_names_keep_the_first_alternative_without_versions_or_arch() -> None:
    assert relation_names("libfoo1 (>= 1.0), python3:any | python3-minimal, libc6") == [
        "libfoo1", "python3", "libc6"]
    assert relation_names("") == []


def test_builds_users_items_and_text_from_the_index(tmp_path: Path) -> None:
    summary = build_debian_dataset(FIXTURE, tmp_path)
    pairs = {(r["user_id"], r["item_id"]) for r in _rows(Path(summary.interactions_path))}
    # Depends + Pre-Depends + Recommends + Suggests; names outside the index and self-relations are dropped;
    # the second stanza of python3 is ignored, dpkg is not in the index.
    assert pairs == {("libfoo1", "libc6"), ("foo-viewer", "libfoo1"), ("foo-viewer", "libc6"),
                     ("foo-viewer", "python3"), ("foo-viewer", "foo-data"), ("python3", "libc6")}
    assert all(r["event"] == "click" for r in _rows(Path(summary.interactions_path)))
    items = {r["item_id"]: r for r in _rows(Path(summary.items_path))}
    assert list(items) == ["libfoo1", "libc6", "foo-viewer", "foo-data", "python3"]
    viewer = items["foo-viewer"]
    assert viewer["text"] == "image viewer for the foo format"
    assert viewer["categories"] == "graphics|interface::x11|role::program|use::viewing"
    assert (summary.items, summary.users, summary.interactions) == (5, 3, 6)
    assert summary.packages_sha256 == sha256_file(FIXTURE)


def test_output_reads_as_the_generic_format_without_timestamps(tmp_path: Path) -> None:
    summary = build_debian_dataset(FIXTURE, tmp_path / "out")
    cfg = HyperrecConfig.model_validate(
        {
            "data": {
                "format": "generic",
                "interactions_path": summary.interactions_path,
                "items_path": summary.items_path,
            }
        }
    )
    loaded = load_generic(cfg.data, Pseudonymizer(b"k" * 32), Quarantine())
    assert not loaded.has_timestamps
    assert len(loaded.interactions) == 6 and len(loaded.items) == 5
    assert set(loaded.interactions["event"]) == {"click"}


def test_a_broken_index_names_the_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "Packages"
    broken.write_text("Package: a\nDescription: fine\n\nthis line has no colon\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Packages, row 4"):
        list(parse_stanzas(broken.read_text(), source=str(broken)))
    with pytest.raises(DataError, match="not found"):
        build_debian_dataset(tmp_path / "missing", tmp_path / "out")
