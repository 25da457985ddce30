"""Reading a user's table and array files with errors a person can act on.

pandas, pyarrow and numpy report a wrong file as, say, "Parquet magic bytes not found in footer" under a
traceback. Every reader of a file the user names goes through here, so a wrong, empty or missing file is a
DataError naming the file and what was expected, which the CLI prints as one line with exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hyperrec.errors import DataError

#: What the readers of pandas and pyarrow raise for a file that is not what its suffix says.
_UNREADABLE = (OSError, ValueError, TypeError, NotImplementedError, pa.ArrowException)
_NPY_MAGIC = b"\x93NUMPY"
_TABLE_READERS: dict[str, tuple[str, Callable[[Path], pd.DataFrame]]] = {
    ".parquet": ("Parquet", pd.read_parquet),
    ".csv": ("CSV", pd.read_csv),
    ".jsonl": ("JSON Lines", lambda path: pd.read_json(path, lines=True)),
    ".json": ("JSON", pd.read_json),
}


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (pandas and YAML messages span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def require_file(path: Path, expected: str) -> None:
    """DataError unless ``path`` is a non-empty file."""
    if not path.exists():
        raise DataError(f"file not found; expected {expected}", file=str(path))
    if not path.is_file():
        raise DataError(f"is a folder, not a file; expected {expected}", file=str(path))
    if path.stat().st_size == 0:
        raise DataError(f"file is empty; expected {expected}", file=str(path))


def read_frame(path: Path, expected: str) -> pd.DataFrame:
    """A .parquet, .csv, .jsonl or .json table; ``expected`` says in the error what the file should be.

    Args:
        path: the table file; its suffix picks the reader.
        expected: what the file should be, for error messages.

    Returns:
        The table.

    Raises:
        DataError: the suffix is unsupported, or the file is missing or unreadable.
    """
    suffix = path.suffix.lower()
    if suffix not in _TABLE_READERS:
        raise DataError(f"unsupported file type {suffix!r}; expected {expected}", file=str(path))
    require_file(path, expected)
    kind, reader = _TABLE_READERS[suffix]
    try:
        return reader(path)
    except _UNREADABLE as exc:
        raise DataError(f"not a readable {kind} file ({one_line(exc)}); expected {expected}",
                        file=str(path)) from None


def load_array(path: Path, expected: str) -> np.ndarray:
    """A NumPy .npy array, never unpickled (a file from elsewhere must not run code)."""
    require_file(path, expected)
    with path.open("rb") as handle:
        if handle.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise DataError(f"not a NumPy .npy file (no .npy header); expected {expected}", file=str(path))
    try:
        return np.load(path, allow_pickle=False)
    except (*_UNREADABLE, EOFError) as exc:  # a truncated file, an array of Python objects
        raise DataError(
            f"not a NumPy .npy array ({one_line(exc)}); expected {expected}", file=str(path)
        ) from None
