"""The CSV record splitter: where quoting breaks, and which records it keeps."""

import pytest

from hyperrec.data.csv_records import MALFORMED_QUOTING, WRONG_FIELD_COUNT, broken_column, parse_records


@pytest.mark.parametrize(("line", "column"), [
    ('a,"b,c\n', 1), ('a,"b"c,d', 1), ('"a","b",c', None), ('a,b"c",d', None), ('a,"b ""x"" c",d', None),
    ('a,b,"c', 2),
])
def test_the_broken_column_is_where_the_quoting_breaks(line, column):
    assert broken_column(line) == column


def test_a_legitimate_multi_line_field_is_one_record_spanning_its_lines():
    lines = ["a,b,c\n", '1,"two\n', 'lines",3\n', "4,5,6\n"]
    records = parse_records(lines, 1, 3)
    assert records.kept == [(1, 2, ["1", "two\nlines", "3"]), (3, 3, ["4", "5", "6"])]
    assert records.rejected == []


def test_swallowed_rows_reject_the_opening_line_and_parsing_resumes_after_it():
    lines = ["a,b,c\n", '1,2,"three\n', "4,5,6\n", '7,8,9"\n']
    records = parse_records(lines, 1, 3)
    assert [(r.index, r.reason, r.column) for r in records.rejected] == [(1, MALFORMED_QUOTING, 2)]
    assert [fields for _, _, fields in records.kept] == [["4", "5", "6"], ["7", "8", '9"']]


def test_a_short_row_is_a_wrong_field_count_and_blank_lines_are_noted():
    records = parse_records(["a,b,c\n", "1,2\n", "\n", "4,5,6\n"], 1, 3)
    assert [(r.index, r.reason) for r in records.rejected] == [(1, WRONG_FIELD_COUNT)]
    assert records.blank == [2]
    assert [first for first, _, _ in records.kept] == [3]
