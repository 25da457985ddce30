"""Find the MovieLens files: the configured folder first, else the verified official archive.

Users outside this workplace have no shared dataset folder, so the same config must also work on a laptop:
download the public zip into a cache folder, check every file against its SHA-256, and only then move the
unpacked folder into place in one rename, so an interrupted or tampered download never leaves a half-usable
dataset behind.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from hyperrec.config import DataConfig
from hyperrec.errors import DatasetUnavailableError
from hyperrec.hashing import sha256_file

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 60
_CHUNK_BYTES = 1 << 20


def locate_dataset(data: DataConfig) -> Path:
    """The folder holding the dataset files: ``dataset_dir`` if it exists, else a verified download.

    Args:
        data: the data settings (dataset folder, download switch, URL, cache folder, file checksums).

    Returns:
        The folder: ``dataset_dir``, a verified cached copy, or a fresh download unpacked into the cache.

    Raises:
        DatasetUnavailableError: the folder is missing and downloading is off.
    """
    if data.dataset_dir.is_dir():
        return data.dataset_dir
    if not data.download:
        raise DatasetUnavailableError(
            f"dataset folder {data.dataset_dir} does not exist and data.download is off; "
            "point data.dataset_dir at the unpacked MovieLens folder or enable data.download"
        )
    cache_dir = data.cache_dir.expanduser()
    target = cache_dir / _archive_stem(data.download_url)
    if target.is_dir() and not _mismatches(target, data.file_sha256):
        logger.info("using the cached dataset in %s", target)
        return target
    return _download_and_unpack(data, cache_dir, target)


def _archive_stem(url: str) -> str:
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    return name.removesuffix(".zip") or "dataset"


def _download_and_unpack(data: DataConfig, cache_dir: Path, target: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as scratch:
        archive = Path(scratch) / "archive.zip"
        _download(data.download_url, archive)
        unpacked = _unpack(archive, Path(scratch) / "unpacked")
        bad = _mismatches(unpacked, data.file_sha256)
        if bad:
            raise DatasetUnavailableError(
                f"downloaded file {bad[0]} does not match its expected SHA-256 (data.file_sha256); "
                "the archive is corrupt or has changed; nothing was kept",
                file=bad[0],
            )
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    logger.info("downloaded and verified the dataset into %s", target)
    return target


def _download(url: str, destination: Path) -> None:
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                destination.open("wb") as out:
            shutil.copyfileobj(response, out, _CHUNK_BYTES)
    except OSError as exc:  # URLError, timeouts and refused connections are all OSErrors
        reason = getattr(exc, "reason", exc)
        raise DatasetUnavailableError(
            f"cannot download {url} ({reason}); are you offline? Download and unzip it by hand and set "
            "data.dataset_dir to the folder"
        ) from None


def _unpack(archive: Path, destination: Path) -> Path:
    """Extract the zip (refusing paths that escape the folder); return the folder holding the files."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if member.startswith("/") or ".." in PurePosixPath(member).parts:
                    raise DatasetUnavailableError(f"archive member {member!r} escapes the target folder")
            bundle.extractall(destination)
    except zipfile.BadZipFile:
        raise DatasetUnavailableError("the downloaded archive is not a valid zip file") from None
    entries = list(destination.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else destination


def _mismatches(folder: Path, expected: dict[str, str]) -> list[str]:
    """Names of expected files that are missing or whose SHA-256 differs."""
    if not expected:
        logger.warning("data.file_sha256 is empty: the dataset files are not verified")
    return [name for name, digest in expected.items() if _sha256(folder / name) != digest.lower()]


def _sha256(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None
