"""A second public dataset of a different shape, built from Debian's package index into the generic format.

Why this one: the benchmarks must not be tuned to MovieLens alone, and this workplace reaches nothing but
package registries. Debian's binary-package index (the ``Packages`` file that ``apt-get update`` stores under
``/var/lib/apt/lists``) is public data of another domain and another shape:

- **users** are binary packages, **items** are the packages they declare a relation to (``Depends``,
  ``Pre-Depends``, ``Recommends``, ``Suggests``; the first alternative of each ``|`` group, only names that
  are themselves packages of the index): "which libraries will this project use", the task of
  third-party-library recommenders;
- **no timestamps** (a dependency list has no order), so the split is a seeded random leave-one-out;
- **a large catalogue**: every package of the index is an item (bookworm main amd64: 63,440 packages,
  ~294k relations, ~42k distinct related packages), most of them with few relations;
- **item text** is the package's one-line description, its section and its debtags (``Tag``), which is
  where a language model can add what co-occurrence alone cannot.

``build_debian_dataset(packages_file, out_dir)`` writes ``interactions.csv`` (user_id,item_id,event=click)
and ``items.csv`` (item_id,title,text,categories) and returns a summary with the SHA-256 of the input, so a
result can name exactly which index it came from. Compressed indexes (``.lz4``, ``.xz``, ``.gz``) are read
through apt's own ``apt-helper cat-file``; a plain file is read directly. The real index is never committed;
tests use a small fixture in the same format.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from hyperrec.errors import DataError
from hyperrec.hashing import sha256_file

logger = logging.getLogger(__name__)

#: The index ``apt-get update`` writes for Debian 12 main on amd64 (the file the documented results used).
DEFAULT_PACKAGES_GLOB = "/var/lib/apt/lists/*_debian_dists_bookworm_main_binary-amd64_Packages*"
RELATION_FIELDS = ("Pre-Depends", "Depends", "Recommends", "Suggests")
APT_HELPER = "/usr/lib/apt/apt-helper"
_COMPRESSED = (".lz4", ".xz", ".gz", ".bz2", ".zst")
_NAME = re.compile(r"[a-z0-9][a-z0-9+.\-]*")


@dataclass(frozen=True)
class DebianDatasetSummary:
    """What was built, from which index."""

    packages_file: str
    packages_sha256: str
    items: int
    users: int
    interactions: int
    interactions_path: str
    items_path: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def default_packages_file() -> Path:
    """The bookworm main amd64 index in apt's lists folder; a clear error when ``apt-get update`` never
    ran."""
    matches = sorted(Path("/").glob(DEFAULT_PACKAGES_GLOB.lstrip("/")))
    if not matches:
        raise DataError(f"no Debian package index matches {DEFAULT_PACKAGES_GLOB}; run 'apt-get update' "
                        "or pass the Packages file explicitly", file=DEFAULT_PACKAGES_GLOB)
    return matches[0]


def read_index_text(path: Path) -> str:
    """The index as text; compressed lists are decompressed by apt's ``apt-helper cat-file``.

    Args:
        path: a Packages file, plain or compressed.

    Returns:
        The decoded text (undecodable bytes replaced).

    Raises:
        DataError: the file is missing, or compressed and apt-helper is missing or fails.
    """
    if not path.is_file():
        raise DataError("Debian package index not found", file=str(path))
    if path.suffix not in _COMPRESSED:
        return path.read_text(encoding="utf-8", errors="replace")
    helper = APT_HELPER if Path(APT_HELPER).exists() else shutil.which("apt-helper")
    if helper is None:
        raise DataError("a compressed package index needs apt's apt-helper to decompress it", file=str(path))
    done = subprocess.run([helper, "cat-file", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        raise DataError(f"apt-helper cannot read it: {done.stderr.decode(errors='replace').strip()}",
                        file=str(path))
    return done.stdout.decode("utf-8", errors="replace")


def parse_stanzas(text: str, source: str = "Packages") -> Iterator[dict[str, str]]:
    """RFC-822 stanzas of a Debian index; continuation lines are joined with spaces.

    Args:
        text: the index text.
        source: the name used for the file in errors.

    Yields:
        Field name -> value, one dict per stanza.

    Raises:
        DataError: a line is not ``Field: value`` or a stanza has no Package field.
    """
    line_number = 0
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            line_number += 1
            if not line.strip():
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
            else:
                raise DataError(f"not a 'Field: value' line: {line[:60]!r}", file=source, row=line_number)
        line_number += 1
        if fields:
            if "Package" not in fields:
                raise DataError(
                    "stanza without a Package field", file=source, row=line_number, field="Package"
                )
            yield fields


def relation_names(value: str) -> list[str]:
    """Package names of a relation field: the first alternative of each ``a | b`` group, no versions."""
    names = []
    for group in value.split(","):
        match = _NAME.match(group.split("|")[0].strip())
        if match:
            names.append(match.group(0))
    return names


def _item_row(fields: dict[str, str]) -> dict[str, str]:
    tags = [t.strip() for t in fields.get("Tag", "").split(",") if t.strip()]
    section = fields.get("Section", "")
    return {
        "item_id": fields["Package"],
        "title": fields["Package"],
        "text": fields.get("Description", ""),
        "categories": "|".join(([section] if section else []) + tags),
    }


def build_debian_dataset(packages_file: Path, out_dir: Path) -> DebianDatasetSummary:
    """Write the generic-format files of the index (see the module docstring).

    Args:
        packages_file: the Debian package index (plain or compressed).
        out_dir: where ``interactions.csv`` and ``items.csv`` are written (created if missing).

    Returns:
        The counts, the index's SHA-256 and the paths of the two files.
    """
    packages_file = Path(packages_file)
    stanzas = list(parse_stanzas(read_index_text(packages_file), source=str(packages_file)))
    first: dict[str, dict[str, str]] = {}
    for fields in stanzas:  # a package listed twice (several versions): the first stanza is kept
        first.setdefault(fields["Package"], fields)
    items = {name: _item_row(fields) for name, fields in first.items()}
    pairs: dict[tuple[str, str], None] = {}
    for fields in first.values():
        user = fields["Package"]
        for field_name in RELATION_FIELDS:
            for name in relation_names(fields.get(field_name, "")):
                if name in items and name != user:
                    pairs[(user, name)] = None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    interactions_path, items_path = out_dir / "interactions.csv", out_dir / "items.csv"
    with interactions_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "event"])
        writer.writerows((user, item, "click") for user, item in pairs)
    with items_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["item_id", "title", "text", "categories"])
        writer.writeheader()
        writer.writerows(items.values())
    summary = DebianDatasetSummary(
        packages_file=str(packages_file), packages_sha256=sha256_file(packages_file), items=len(items),
        users=len({user for user, _ in pairs}), interactions=len(pairs),
        interactions_path=str(interactions_path), items_path=str(items_path))
    logger.info("Debian dataset: %d items, %d users, %d interactions from %s", summary.items, summary.users,
                summary.interactions, packages_file)
    return summary
