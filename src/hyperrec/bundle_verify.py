"""The serving bundle as a folder: its file names, the one manifest reader and the one sha256 check.

Standard library only, so that everything that opens a bundle - the exporter and the serving runtime
(``hyperrec.export.bundle``), the online catalogue, the registry (``hyperrec.registry.integrity``) and deploy
- reads it the same way. The layout is described in ``hyperrec.export.bundle``, which writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from hyperrec.errors import BundleError, read_json
from hyperrec.hashing import sha256_file

BUNDLE_FORMAT = "hyperrec-serving-bundle/1"
MANIFEST_FILE = "manifest.json"
ITEMS_FILE = "items.parquet"
TRITON_DIR = "triton"
#: Optional files with a meaning to the runtime; other extra names are carried and checksummed only.
ITEM_EMBEDDINGS_FILE = "item_embeddings.npy"
SEGMENTS_FILE = "segments.parquet"
SEGMENT_POPULARITY_FILE = "segment_popularity.parquet"
#: Manifest fields every bundle has (what the registry reads) ...
IDENTITY_FIELDS = ("model_name", "version", "n_items", "max_history", "files")
#: ... and those the serving runtime needs as well (the tensor specs).
RUNTIME_FIELDS = (*IDENTITY_FIELDS, "inputs", "outputs")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def hash_bundle_files(root: Path) -> dict[str, str]:
    """``{posix relative path: sha256}`` of every file under ``root`` except manifest.json."""
    root = Path(root)
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() != MANIFEST_FILE
    }


def bundle_file_problems(root: Path, listed: Mapping[str, str]) -> list[str]:
    """What differs between the files under ``root`` and the manifest's ``{path: sha256}`` (empty: none)."""
    actual = hash_bundle_files(root)
    problems = [f"missing: {name}" for name in sorted(set(listed) - set(actual))]
    problems += [f"not in manifest: {name}" for name in sorted(set(actual) - set(listed))]
    problems += [f"sha256 mismatch: {name}" for name in sorted(set(listed) & set(actual))
                 if listed[name] != actual[name]]
    return problems


def read_manifest(root: Path, required: Iterable[str] = RUNTIME_FIELDS) -> dict[str, Any]:
    """manifest.json of a bundle folder, checked for its format, the ``required`` fields and a well-formed
    ``files`` map (safe relative paths, lowercase hex sha256s); no hashing. Raises BundleError."""
    path = Path(root) / MANIFEST_FILE
    manifest = read_json(path, BundleError, missing=f"not a serving bundle (no {MANIFEST_FILE}): {root}",
                         what="manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: unknown bundle format (expected {BUNDLE_FORMAT})")
    for key in required:
        if key not in manifest:
            raise BundleError(f"{path}: field {key!r} missing")
    _check_file_list(path, manifest.get("files"))
    return manifest


def verify_bundle(root: Path) -> dict[str, Any]:
    """Re-hash every file against manifest.json; return the manifest, raise BundleError on any difference.

    Files missing, changed, or present but not listed in the manifest all fail the check.
    """
    manifest = read_manifest(root)
    problems = bundle_file_problems(Path(root), manifest["files"])
    if problems:
        raise BundleError(f"bundle {root} failed verification: " + "; ".join(problems))
    return manifest


def _check_file_list(path: Path, files: Any) -> None:
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{path}: 'files' must map every bundle file to its sha256")
    for name, digest in files.items():
        pure = PurePosixPath(name)
        if (
            not name
            or pure.is_absolute()
            or ".." in pure.parts
            or name != pure.as_posix()
            or name == MANIFEST_FILE
        ):
            raise BundleError(f"{path}: invalid file path {name!r} in 'files'")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise BundleError(f"{path}: {name!r} has no lowercase hex sha256")
