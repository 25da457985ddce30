"""item_id -> item_idx (the row of an item in the embedding matrices) from whichever items file a user has.

Data prep numbers the catalogue in the order of the items file, after dropping rows without an item id and
repeated ids (hyperrec.data.readers.parse_items). So the prepared ``items.parquet`` (which carries
``item_idx``) and the raw items file it came from - generic items CSV/JSONL/Parquet, or MovieLens
``movies.csv`` - give the same numbering, and a monitoring command can take either.
"""

from __future__ import annotations

from pathlib import Path

from hyperrec.data.files import read_frame
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import ITEM_REQUIRED, MOVIELENS_MOVIES, parse_items, read_table
from hyperrec.errors import DataError

EXPECTED_ITEMS = (
    "the items.parquet of a prepared-data folder (item_id, item_idx), or the items file data prep "
    "read (generic items .csv/.jsonl/.parquet with item_id, title; or MovieLens movies.csv)"
)
_PREPARED_COLUMNS = {"item_id", "item_idx"}


def catalogue_index(path: Path) -> dict[str, int]:
    """item_id -> item_idx of a prepared items.parquet, or as data prep numbers the items of a raw items file.

    Args:
        path: a prepared items.parquet, a MovieLens movies.csv or a generic-format items file.

    Returns:
        item_id -> item_idx.

    Raises:
        DataError: the file cannot be read as an items table.
    """
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame = read_frame(path, EXPECTED_ITEMS)
        if _PREPARED_COLUMNS <= set(frame.columns):
            return dict(zip(frame["item_id"].astype(str), frame["item_idx"].astype(int)))
    movielens = path.name == MOVIELENS_MOVIES
    quarantine = Quarantine()
    try:
        table = read_table(path, ("movieId", "title") if movielens else ITEM_REQUIRED, quarantine)
    except DataError as exc:
        raise DataError(f"{exc}; expected {EXPECTED_ITEMS}") from None
    if movielens:
        table.frame = table.frame.rename(columns={"movieId": "item_id", "genres": "categories"})
    items = parse_items(table, quarantine)
    return {str(item): index for index, item in enumerate(items["item_id"])}
