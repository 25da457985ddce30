"""The images are built once per session with `make image` (the base and the wheelhouse are cached outside
the repository, so a fresh clone on the same machine rebuilds only what changed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from image_helpers import REPO_ROOT, Image, build_images


@pytest.fixture(scope="session")
def images() -> tuple[Image, Image]:
    """(components image, serving image), freshly built from this checkout."""
    if shutil.which("podman") is None or shutil.which("mmdebstrap") is None:
        done = subprocess.run(["make", "--no-print-directory", "image-tools"], cwd=REPO_ROOT,
                              capture_output=True, text=True)
        if done.returncode != 0 or shutil.which("podman") is None:
            pytest.skip(f"podman cannot be installed here (make image-tools: {done.stderr.strip()[-300:]})")
    return build_images()
