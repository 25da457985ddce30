"""Bundle folders as the registry sees them: a well-formed manifest, every file verified by sha256.

Also the registry's error types and the canonical-JSON hashes recorded as lineage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperrec.bundle_verify import IDENTITY_FIELDS, MANIFEST_FILE, bundle_file_problems, read_manifest
from hyperrec.config import HyperrecConfig
from hyperrec.errors import BundleError, HyperrecError
from hyperrec.hashing import sha256_file


class RegistryError(HyperrecError):
    """A registry operation cannot be done (no such model/alias, gate not passed, nothing to roll back to)."""


class BundleIntegrityError(RegistryError, BundleError):
    """A bundle folder does not match its manifest or the sha256s recorded in the registry."""


def sha256_json(payload: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_sha256(cfg: HyperrecConfig) -> str:
    """Hash of the whole configuration, as lineage of a registered version."""
    return sha256_json(cfg.model_dump(mode="json"))


def read_bundle_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a bundle folder (``hyperrec.bundle_verify.read_manifest``, no hashing), with the
    fields the registry records; a problem is a BundleIntegrityError."""
    try:
        return read_manifest(root, required=IDENTITY_FIELDS)
    except BundleError as exc:
        raise BundleIntegrityError(str(exc)) from None


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
