"""Optional user attributes (age band, gender, region, ...) for the fairness audit's disparate-impact table.

The file (``fairness.users_path``; CSV, JSON Lines or Parquet) has a ``user_id`` column with the same raw ids
as the interactions file, plus one column per attribute. Ids are pseudonymized on read with the same key as
data prep, so they meet the prepared data's users; the raw ids are never kept. Attributes are read at audit
time only and never enter the prepared data or a model. See docs/DATA.md, "User attributes".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hyperrec.config import PrivacyConfig
from hyperrec.data.files import read_frame
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.errors import DataError

EXPECTED = "a users table with a user_id column and attribute columns (docs/DATA.md, 'User attributes')"


def load_user_attributes(path: Path, attributes: Sequence[str], privacy: PrivacyConfig) -> pd.DataFrame:
    """user_id (pseudonym) plus the attribute columns as strings; a missing value stays missing.

    ``attributes`` empty means every column but user_id. A missing column, no attribute at all or a user
    listed twice is a DataError naming the file (and the column or row).

    Args:
        path: the attributes file (any table format ``read_frame`` reads).
        attributes: the columns to keep; empty keeps all.
        privacy: the privacy settings, to pseudonymize user ids as data prep does.

    Returns:
        One row per user.

    Raises:
        DataError: a column or user_id is missing, empty, or a user is listed twice.
    """
    frame = read_frame(Path(path), EXPECTED)
    if "user_id" not in frame.columns:
        raise DataError(f"no user_id column; expected {EXPECTED}", file=str(path), field="user_id")
    wanted = list(attributes) or [column for column in frame.columns if column != "user_id"]
    if not wanted:
        raise DataError(f"no attribute column besides user_id; expected {EXPECTED}", file=str(path))
    for column in wanted:
        if column not in frame.columns:
            raise DataError(f"attribute column missing (columns: {sorted(map(str, frame.columns))})",
                            file=str(path), field=column)
    if frame["user_id"].isna().any():
        row = int(frame["user_id"].isna().to_numpy().argmax()) + 2  # 1-based, after the header line
        raise DataError("empty user_id", file=str(path), row=row, field="user_id")
    raw = frame["user_id"].astype(str).str.strip()
    duplicated = raw.duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().argmax()) + 2
        raise DataError(f"user {raw[duplicated].iloc[0]!r} is listed twice", file=str(path), row=row,
                        field="user_id")
    users = Pseudonymizer.from_config(privacy).pseudonymize_or_keep(raw)
    values = {column: frame[column].astype(object).where(frame[column].notna(), None) for column in wanted}
    attributes_frame = pd.DataFrame({"user_id": users.to_numpy(), **{
        column: series.map(lambda value: None if value is None else str(value).strip()).to_numpy()
        for column, series in values.items()}})
    return attributes_frame
