"""The one check of a bundle folder against its manifest: every listed file present and equal, nothing extra.

Standard library only: the serving runtime (``hyperrec.export.bundle.verify_bundle``) and the registry
(``hyperrec.registry.integrity.verify_bundle_dir``) both call it, each raising its own error type.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hyperrec.hashing import sha256_file

MANIFEST_FILE = "manifest.json"


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
