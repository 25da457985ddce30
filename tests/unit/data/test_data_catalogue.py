"""The item index of a raw items file is the one data prep writes, so `drift --items items.csv` maps alike."""

from pathlib import Path

import pytest

from hyperrec.config import DataConfig, HyperrecConfig, PrivacyConfig
from hyperrec.data.catalogue import catalogue_index
from hyperrec.data.prep import run_data_prep
from hyperrec.errors import DataError

FIXTURES = Path(__file__).parents[2] / "fixtures"


def test_a_raw_items_file_numbers_items_as_the_prepared_items_parquet(tmp_path, pseudonym_key):
    items = tmp_path / "items.csv"
    # a repeated id and a row without one: data prep skips both, and so must the index
    items.write_text((FIXTURES / "generic" / "items.csv").read_text() + "sku-003,Again,,\n,No id,,\n")
    cfg = HyperrecConfig(data=DataConfig(format="generic", download=False, items_path=items,
                                         interactions_path=FIXTURES / "generic" / "interactions.csv"),
                         privacy=PrivacyConfig(pseudonym_key_file=tmp_path / "never-written.key"))
    prepared = run_data_prep(cfg, tmp_path / "out")
    assert catalogue_index(items) == catalogue_index(prepared.root / "items.parquet")
    assert len(catalogue_index(items)) == 20


def test_movielens_movies_csv_is_numbered_in_file_order():
    index = catalogue_index(FIXTURES / "movielens_tiny" / "movies.csv")
    first = (FIXTURES / "movielens_tiny" / "movies.csv").read_text().splitlines()[1].split(",")[0]
    assert index[first] == 0


def test_an_interactions_file_is_not_an_items_file():
    with pytest.raises(DataError, match="'title'.*expected the items.parquet"):
        catalogue_index(FIXTURES / "generic" / "interactions.csv")
