"""PII scrubbing of free text and language detection of item text."""

import pandas as pd
import pytest

from hyperrec.data.text import detect_languages, item_texts, scrub_series, scrub_text, tags_to_text


@pytest.mark.parametrize(("text", "planted", "kind"), [
    ("write to alice.smith@example.com today", "alice.smith@example.com", "EMAIL"),
    ("mail me at john.doe@example.com", "example.com", "EMAIL"),  # stock detector alone leaves the domain
    ("call +1 415-555-0132 after six", "555-0132", "PHONE"),
    ("call (212) 555-0199", "555-0199", "PHONE"),
    ("ring 020 7946 0958 (London)", "7946 0958", "PHONE"),  # national format, stock US-only detector misses
    ("tel 0612345678", "0612345678", "PHONE"),
    ("paid with 4111 1111 1111 1111 lol", "4111 1111", "CREDIT_CARD"),
    ("4111-1111-1111-1111 at the start", "4111-1111", "CREDIT_CARD"),
    ("see https://x.io/a?b=1 for more", "x.io", "URL"),
    ("fan site www.example.org/page", "example.org", "URL"),
])
def test_planted_pii_is_replaced(text, planted, kind):
    cleaned = scrub_text(text)
    assert planted not in cleaned
    assert "{{" + kind in cleaned


@pytest.mark.parametrize("text", [
    "twist ending", "Oscar (Best Picture)", "1970s", "9/11", "2001: a space odyssey", "imdb top 250",
    "The Godfather Trilogy: 1972-1990 (1992)", "seen 1995 2001 2010",
])
def test_ordinary_tags_are_left_alone(text):
    assert scrub_text(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("example.net/profile/jdoe", "{{URL}}"),
    ("see example.net/profile/jdoe now", "see {{URL}} now"),
    ("Find us at example.net/profile/jdoe.", "Find us at {{URL}}."),  # not {{EMAIL}}/profile/jdoe
    ("jdoe at example.net/profile/jdoe", "jdoe at {{URL}}"),
    ("(blog.example.co.uk/posts/1), great", "({{URL}}), great"),
    ("short link bit.ly/3xYz", "short link {{URL}}"),
    ("Shop.Example.COM/p?id=3&u=jdoe", "{{URL}}"),
    ("host example.org:8080/admin", "host {{URL}}"),
])
def test_scheme_less_links_become_the_url_placeholder(text, expected):
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", [
    "Dr. No", "Dr.No/Goldfinger", "Mr.Smith", "Mr.Smith/Jones", "notes.txt", "read notes.txt first",
    "archive.tar.gz", "pi is 3.14/2 here", "v2.5/3.0", "and/or", "AC/DC", "24/7", "U.S./Canada", "Ph.D/MBA",
    "e.g. i.e./x", "Amazon.com (2004)", "St. Louis/Chicago",
])
def test_text_that_only_looks_dotted_or_slashed_is_left_alone(text):
    assert scrub_text(text) == text


def test_a_column_is_scrubbed_per_distinct_value_and_counts_changes():
    column = pd.Series(["call 020 7946 0958", None, "fine", "call 020 7946 0958"])
    cleaned, changed = scrub_series(column)
    assert cleaned.tolist() == ["call {{PHONE}}", None, "fine", "call {{PHONE}}"]
    assert changed == 1


def test_tags_join_case_insensitively_most_frequent_first():
    tags = pd.DataFrame({"item_id": ["1", "1", "1", "1", "2"],
                         "tag": ["funny", "Pixar", "pixar", "dark", "slow"]})
    assert tags_to_text(tags).to_dict() == {"1": "Pixar, funny, dark", "2": "slow"}


def test_item_text_appends_tag_text_to_own_text():
    items = pd.DataFrame({"item_id": ["1", "2", "3"], "text": ["A red teapot", "", ""]})
    tag_text = pd.Series({"1": "kitchen", "2": "cute"})
    assert item_texts(items, tag_text).tolist() == ["A red teapot, kitchen", "cute", ""]


def test_languages_are_detected_deterministically_and_short_text_is_unknown():
    items = pd.DataFrame({
        "title": ["Le voyage extraordinaire de la petite fille et du vieux marin (2001)",
                  "Der lange Weg nach Hause durch die verschneiten Berge (1987)", "Heat (1995)", ""],
        "text": ["", "", "", ""],
    })
    first = detect_languages(items, seed=0).tolist()
    assert first == ["fr", "de", "unknown", "unknown"]
    assert detect_languages(items, seed=0).tolist() == first
