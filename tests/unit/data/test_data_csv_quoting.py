"""A stray CSV quote quarantines its own line and nothing else: rows in = rows kept + rows quarantined.

The two files of issue 11 (finding 2): a 480-row interactions file with an unterminated quote on line 101,
once in a middle column (the parser used to swallow the rest of the file) and once in the last column, closed
by a quote on line 479 (378 rows used to vanish into one query field). Both ended with exit 0 and a report
counting 100 or 102 rows read.
"""

import json
import random
from pathlib import Path

import pytest

from hyperrec.config import DataConfig, HyperrecConfig, PrivacyConfig
from hyperrec.data import prepared
from hyperrec.data.prep import run_data_prep
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import load_generic

HEADER = "user_id,item_id,event,timestamp,value,dwell_seconds,query"
ROWS = 480
BAD_LINE = 101  # the header is line 1, so the first data row is line 2
CLOSING_LINE = 479
ITEMS = "item_id,title,text,categories\n" + "".join(
    f"sku-{n:03d},Item {n},Sturdy gear,home\n" for n in range(1, 21)
)


def _row(line: int) -> list[str]:
    """The data row on ``line``: every fifth one a search with a query, the others clicks and ratings."""
    n = line - 2
    user, item, stamp = f"u{n % 40}", f"sku-{n * 7 % 20 + 1:03d}", str(1_700_000_000 + 60 * n)
    if n % 5 == 4:
        return [user, "", "search", stamp, "", "", f"red teapot {n}"]
    if n % 5 == 3:
        return [user, item, "rating", stamp, str(1 + n % 5), "", ""]
    return [user, item, "click", stamp, "", "", ""]


def _interactions(edits: dict[int, tuple[int, str]]) -> str:
    """480 data rows; ``edits`` maps a line to (column, new cell text)."""
    lines = [HEADER]
    for line in range(2, ROWS + 2):
        row = _row(line)
        if line in edits:
            column, text = edits[line]
            row[column] = text
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


UNTERMINATED_MIDDLE = {BAD_LINE: (1, '"sku-005')}
OPEN_LAST_COLUMN = {BAD_LINE: (6, '"red teapot'), CLOSING_LINE: (6, 'mug "large"')}


def _load(tmp_path: Path, content: str, items: str = ITEMS):
    (tmp_path / "interactions.csv").write_text(content, encoding="utf-8")
    (tmp_path / "items.csv").write_text(items, encoding="utf-8")
    cfg = DataConfig(format="generic", interactions_path=tmp_path / "interactions.csv",
                     items_path=tmp_path / "items.csv", download=False)
    quarantine = Quarantine()
    return load_generic(cfg, Pseudonymizer(b"quoting-test-key"), quarantine), quarantine


def _quarantined(
    quarantine: Quarantine, file_name: str = "interactions.csv"
) -> list[tuple[int, str, str | None]]:
    return [(r["row"], r["reason"], r["field"]) for r in quarantine.records if r["file"] == file_name]


def test_an_unterminated_quote_in_a_middle_column_quarantines_only_its_line(tmp_path):
    loaded, quarantine = _load(tmp_path, _interactions(UNTERMINATED_MIDDLE))
    assert _quarantined(quarantine) == [(BAD_LINE, "malformed_quoting", "item_id")]
    assert loaded.rows_read["interactions.csv"] == ROWS
    assert len(loaded.interactions) == ROWS - 1
    assert loaded.interactions["_row"].tolist() == [n for n in range(2, ROWS + 2) if n != BAD_LINE]


def test_an_open_quote_in_the_last_column_swallows_no_rows(tmp_path):
    loaded, quarantine = _load(tmp_path, _interactions(OPEN_LAST_COLUMN))
    assert _quarantined(quarantine) == [(BAD_LINE, "malformed_quoting", "query")]
    assert loaded.rows_read["interactions.csv"] == ROWS
    assert len(loaded.interactions) == ROWS - 1
    queries = loaded.interactions["query"].dropna()
    assert queries.str.len().max() < 40 and not queries.str.contains("\n").any()
    assert 'mug "large"' in queries.tolist()  # the closing line is a row of its own, read as written


@pytest.mark.parametrize("edits", [UNTERMINATED_MIDDLE, OPEN_LAST_COLUMN], ids=["middle", "last_column"])
def test_the_data_report_counts_every_line_read_and_the_quarantine_the_rest(tmp_path, edits, pseudonym_key):
    (tmp_path / "interactions.csv").write_text(_interactions(edits), encoding="utf-8")
    (tmp_path / "items.csv").write_text(ITEMS, encoding="utf-8")
    cfg = HyperrecConfig(data=DataConfig(format="generic", download=False, items_path=tmp_path / "items.csv",
                                         interactions_path=tmp_path / "interactions.csv"),
                         privacy=PrivacyConfig(pseudonym_key_file=tmp_path / "never-written.key"))
    run_data_prep(cfg, tmp_path / "out")
    report = json.loads((tmp_path / "out" / prepared.REPORT_JSON).read_text())
    read = report["files"]["interactions.csv"]
    assert read == {"rows_read": ROWS, "quarantined_on_read": 1}
    assert report["steps"]["read"]["rows_in"] == ROWS
    assert report["steps"]["read"]["rows_out"] == ROWS - 1


def test_a_multi_line_quoted_description_stays_one_item(tmp_path):
    items = ITEMS + 'sku-099,Kettle,"Boils fast.\nKeeps warm, too.",kitchen\nsku-100,Cup,Plain,kitchen\n'
    loaded, quarantine = _load(tmp_path, _interactions({}), items=items)
    assert _quarantined(quarantine, "items.csv") == []
    kettle = loaded.items.set_index("item_id").loc["sku-099"]
    assert kettle["text"] == "Boils fast.\nKeeps warm, too."
    assert loaded.items["item_id"].tolist()[-2:] == ["sku-099", "sku-100"]
    assert loaded.items["_row"].tolist()[-2:] == [22, 24]


def test_text_after_a_closing_quote_quarantines_its_line_with_the_field(tmp_path):
    loaded, quarantine = _load(tmp_path, _interactions({5: (2, '"click"ed')}))
    assert _quarantined(quarantine) == [(5, "malformed_quoting", "event")]
    assert len(loaded.interactions) == ROWS - 1


def test_rows_in_equal_rows_kept_plus_rows_quarantined_for_random_stray_quotes(tmp_path):
    rng = random.Random(11)
    for attempt in range(40):
        edits = {}
        for line in rng.sample(range(2, ROWS + 2), rng.randint(1, 6)):
            column = rng.randrange(7)
            cell = _row(line)[column]
            cut = rng.randint(0, len(cell))
            edits[line] = (column, cell[:cut] + '"' + cell[cut:])
        folder = tmp_path / str(attempt)
        folder.mkdir()
        loaded, quarantine = _load(folder, _interactions(edits))
        assert loaded.rows_read["interactions.csv"] == ROWS, edits
        assert len(loaded.interactions) + quarantine.count("interactions.csv") == ROWS, edits
        assert "unaccounted_line" not in quarantine.counts_by_reason()
