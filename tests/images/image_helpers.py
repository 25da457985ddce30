"""Helpers of the image tests: building the images with `make image`, reading their config, and running
commands inside them.

`podman run` is refused in this sandbox (setrlimit), so a command runs the way a container runtime would
start it, minus the namespaces: in the root file system of a container created from the image
(`podman create` + `podman mount`), with the image's environment, working directory and user (`chroot
--userspec`). The container's file system is writable, so a test copies its inputs in and reads the outputs
back, and `podman rm` drops everything afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENTS_REPOSITORY = "ghcr.io/hyperrec/hyperrec"
SERVING_REPOSITORY = "ghcr.io/hyperrec/hyperrec-serving"
#: Size targets of issue 8 (bytes, as `podman image inspect` reports them).
COMPONENTS_MAX_BYTES = 3 * 10**9
SERVING_MAX_BYTES = 800 * 10**6


def package_version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def podman(*args: str) -> str:
    """stdout of a podman command; a failure raises with podman's own message."""
    done = subprocess.run(["podman", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Image:
    """A built image: its reference and what `podman image inspect` says about it."""

    reference: str
    inspect: dict[str, Any]

    @classmethod
    def load(cls, reference: str) -> Image:
        (inspect,) = json.loads(podman("image", "inspect", reference))
        return cls(reference, inspect)

    @property
    def config(self) -> dict[str, Any]:
        return self.inspect["Config"]

    @property
    def size(self) -> int:
        return int(self.inspect["Size"])

    @property
    def user(self) -> str:
        return self.config.get("User", "")

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config.get("Env", []))

    @property
    def labels(self) -> dict[str, str]:
        return self.config.get("Labels") or {}


@contextmanager
def container_root(image: Image) -> Iterator[Path]:
    """The writable root file system of a fresh container of ``image``; removed on exit."""
    container = podman("create", image.reference).strip()
    try:
        yield Path(podman("mount", container).strip())
    finally:
        subprocess.run(["podman", "umount", container], capture_output=True)
        subprocess.run(["podman", "rm", "--force", container], capture_output=True)


def give_to_user(path: Path, image: Image) -> None:
    """Make ``path`` and everything under it the image user's, as a volume mounted for that user would be."""
    uid, _, gid = (image.user or "0").partition(":")
    for item in [path, *path.rglob("*")]:
        os.chown(item, int(uid), int(gid or uid), follow_symlinks=False)


def run_in(
    root: Path, image: Image, argv: Sequence[str], *, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``root`` as the image would: its Env only, its WorkingDir, its User.

    The command is looked up on the image's PATH, as a runtime does; stdout and stderr are captured.
    """
    user = image.user or "0:0"
    if ":" not in user:
        user = f"{user}:{user}"
    workdir = image.config.get("WorkingDir") or "/"
    env = [f"{key}={value}" for key, value in image.env.items()]
    command = [
        shutil.which("env") or "/usr/bin/env", "-i", *env,
        shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={user}", str(root),
        "/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, *argv,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def build_images() -> tuple[Image, Image]:
    """`make image` (cached base and wheelhouse), then the components and serving images it tagged."""
    done = subprocess.run(
        ["make", "--no-print-directory", "image"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"make image failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    version = package_version()
    return Image.load(f"{COMPONENTS_REPOSITORY}:{version}"), Image.load(f"{SERVING_REPOSITORY}:{version}")
