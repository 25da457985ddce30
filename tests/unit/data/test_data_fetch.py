"""locate_dataset: configured folder first, else a verified download into the cache (no network used)."""

import hashlib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from hyperrec.config import DataConfig
from hyperrec.data.fetch import locate_dataset
from hyperrec.errors import DatasetUnavailableError

FILES = {"ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
         "movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Animation\n"}


def _zip(tmp_path: Path, files: dict[str, bytes], folder: str = "ml-tiny") -> Path:
    archive = tmp_path / f"{folder}.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(f"{folder}/{name}", content)
    return archive


def _config(tmp_path: Path, archive: Path, sha: dict[str, str] | None = None) -> DataConfig:
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()}
    return DataConfig(dataset_dir=tmp_path / "absent", download=True, download_url=archive.as_uri(),
                      cache_dir=tmp_path / "cache", file_sha256=digests if sha is None else sha)


def test_an_existing_dataset_dir_is_used_as_is(tmp_path):
    assert locate_dataset(DataConfig(dataset_dir=tmp_path, download=False)) == tmp_path


def test_missing_dir_without_download_names_the_folder(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="absent"):
        locate_dataset(DataConfig(dataset_dir=tmp_path / "absent", download=False))


def test_download_unpacks_and_verifies_into_the_cache_then_reuses_it(tmp_path):
    archive = _zip(tmp_path, FILES)
    cfg = _config(tmp_path, archive)
    folder = locate_dataset(cfg)
    assert folder == tmp_path / "cache" / "ml-tiny"
    assert (folder / "ratings.csv").read_bytes() == FILES["ratings.csv"]
    archive.unlink()  # a second call must not download again
    assert locate_dataset(cfg) == folder


def test_a_hash_mismatch_names_the_file_and_leaves_nothing_unpacked(tmp_path):
    archive = _zip(tmp_path, {**FILES, "movies.csv": b"tampered\n"})
    with pytest.raises(DatasetUnavailableError, match="movies.csv") as caught:
        locate_dataset(_config(tmp_path, archive))
    assert caught.value.file == "movies.csv"
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_file_missing_from_the_archive_is_a_mismatch(tmp_path):
    archive = _zip(tmp_path, {"ratings.csv": FILES["ratings.csv"]})
    with pytest.raises(DatasetUnavailableError, match="movies.csv"):
        locate_dataset(_config(tmp_path, archive))


def test_offline_gives_a_clear_message(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    cfg = _config(tmp_path, tmp_path / "ml-tiny.zip")
    with pytest.raises(DatasetUnavailableError, match="offline") as caught:
        locate_dataset(cfg)
    assert "data.dataset_dir" in str(caught.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_archive_members_escaping_the_folder_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../outside.csv", b"x")
    with pytest.raises(DatasetUnavailableError, match="escapes"):
        locate_dataset(_config(tmp_path, archive))
    assert not (tmp_path / "outside.csv").exists()
