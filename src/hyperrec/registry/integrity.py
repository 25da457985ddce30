"""Bundle folders as the registry sees them: a well-formed manifest, every file verified by sha256.

Also the registry's error types and the canonical-JSON hashes recorded as lineage.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from hyperrec.bundle_verify import MANIFEST_FILE, bundle_file_problems
from hyperrec.config import HyperrecConfig
from hyperrec.errors import HyperrecError
from hyperrec.hashing import sha256_file

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class RegistryError(HyperrecError):
    """A registry operation cannot be done (no such model/alias, gate not passed, nothing to roll back to)."""


class BundleIntegrityError(RegistryError):
    """A bundle folder does not match its manifest or the sha256s recorded in the registry."""


def sha256_json(payload: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_sha256(cfg: HyperrecConfig) -> str:
    """Hash of the whole configuration, as lineage of a registered version."""
    return sha256_json(cfg.model_dump(mode="json"))


def read_bundle_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a bundle folder, checked for a well-formed ``files`` map (no hashing)."""
    path = Path(root) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleIntegrityError(f"not a serving bundle (no {MANIFEST_FILE}): {root}") from None
    except (OSError, ValueError) as exc:
        raise BundleIntegrityError(f"unreadable manifest {path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleIntegrityError(f"{path} must hold a JSON object")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleIntegrityError(f"{path}: 'files' must map every bundle file to its sha256")
    for name, digest in files.items():
        pure = PurePosixPath(name)
        if not name or pure.is_absolute() or ".." in pure.parts or name != pure.as_posix() or name == MANIFEST_FILE:
            raise BundleIntegrityError(f"{path}: invalid file path {name!r} in 'files'")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise BundleIntegrityError(f"{path}: {name!r} has no lowercase hex sha256")
    return manifest


def verify_bundle_dir(
    root: Path,
    expected_files: Mapping[str, str] | None = None,
    expected_manifest_sha256: str | None = None,
) -> dict[str, Any]:
    """Re-hash every file of a bundle folder; return its manifest or raise BundleIntegrityError.

    The folder must hold exactly the files manifest.json lists (none missing, none extra, every sha256
    equal). With ``expected_files`` / ``expected_manifest_sha256`` (what the registry recorded at
    registration), the manifest itself must also be the registered one, so editing a file *and* its
    manifest entry is caught too.
    """
    root = Path(root)
    manifest = read_bundle_manifest(root)
    listed: dict[str, str] = manifest["files"]
    problems = bundle_file_problems(root, listed)
    if expected_files is not None and dict(expected_files) != listed:
        changed = sorted(set(expected_files).symmetric_difference(listed)
                         | {n for n in set(expected_files) & set(listed) if expected_files[n] != listed[n]})
        problems.append(f"manifest differs from the registered file list: {changed}")
    if expected_manifest_sha256 is not None:
        manifest_sha = sha256_file(root / MANIFEST_FILE)
        if manifest_sha != expected_manifest_sha256:
            problems.append(f"manifest.json sha256 {manifest_sha} != registered {expected_manifest_sha256}")
    if problems:
        raise BundleIntegrityError(f"bundle {root} failed verification: " + "; ".join(problems))
    return manifest
