"""Typed errors, so that every layer can map a failure to a clear message (and servers to a 4xx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class HyperrecError(Exception):
    """Base of every error hyperrec raises on purpose."""


class ConfigError(HyperrecError):
    """The configuration is invalid or cannot be read."""


class DataError(HyperrecError):
    """Input data cannot be used at all (missing file, missing column, empty file)."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None) -> None:
        self.file, self.row, self.field = file, row, field
        where = ", ".join(
            part for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"field {field!r}" if field else "",
            ) if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class DatasetUnavailableError(DataError):
    """The dataset is neither at the configured path nor downloadable (e.g. offline)."""


class ModelError(HyperrecError):
    """A model cannot be trained, loaded or used as asked."""


class BundleError(HyperrecError):
    """A serving bundle is missing, incomplete, or fails its checksums."""


def read_json(path: Path, error: type[HyperrecError], *, missing: str, what: str = "") -> Any:
    """The JSON document at ``path``, its failures as ``error``: ``missing`` when there is no file,
    ``unreadable <what> <path>: <reason>`` when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(missing) from None
    except (OSError, ValueError) as exc:
        raise error(f"unreadable {what + ' ' if what else ''}{path}: {exc}") from None
