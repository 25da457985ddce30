"""Free text: PII scrubbing (tags, queries, item text) and language detection of item text.

Tags and search queries are written by users, so they may hold an email address or a phone number; they are
scrubbed before they are stored, logged or turned into item text. scrubadub's stock detectors miss a few
cases, so five regex detectors are added: a strict ``x@y.z`` email (the stock one can stop at
``me at john.doe`` and leave ``@example.com`` behind), any ``http(s)://``/``www.`` link (the stock one misses
short domains), a scheme-less link such as ``example.net/profile/jdoe`` (a domain, a lowercase TLD and a
path: the path is what tells a link from ``notes.txt`` or ``Mr.Smith``), card-like 13-19 digit numbers with
spaces or dashes (the stock one needs whitespace before and no separators), and 10-15 digit phone numbers in
any national format (the stock one only knows the US format unless a number starts with ``+``). The stock
email detector also reads ``us at example.net`` as a spelled-out address; when a path follows, that is a
link, so the match is left to the link detector.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

import pandas as pd
import scrubadub
from langdetect import DetectorFactory, detect
from langdetect.lang_detect_exception import LangDetectException
from scrubadub.detectors import EmailDetector, RegexDetector
from scrubadub.filth import CreditCardFilth, EmailFilth, Filth, PhoneFilth, UrlFilth
from tqdm.auto import tqdm

UNKNOWN_LANGUAGE = "unknown"
#: Fewer letters than this and langdetect guesses (short titles come out as Afrikaans or Tagalog).
MIN_LANGUAGE_LETTERS = 20
TAG_SEPARATOR = ", "
_LETTER = re.compile(r"[^\W\d_]")
_TRAILING_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_YEARS_ONLY = re.compile(r"\(?(?:19|20)\d\d(?:[ .\-()]{1,2}(?:19|20)\d\d)*\)?")
_MERGED_TAG = re.compile(r"\{\{([A-Z_]+(?:\+[A-Z_]+)+)\}\}")


class StrictEmailDetector(RegexDetector):
    """``local@domain.tld`` as a whole, so no part of the address survives."""

    name = "email_strict"
    filth_cls = EmailFilth
    regex = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)


class CardNumberDetector(RegexDetector):
    """Card-like numbers: 13-19 digits, optionally grouped by single spaces or dashes."""

    name = "card_number"
    filth_cls = CreditCardFilth
    regex = re.compile(r"(?<!\w)(?:\d[ -]?){12,18}\d(?!\w)")


class DigitPhoneDetector(RegexDetector):
    """Phone-like numbers: 10-15 digits with an optional ``+`` and separators `` .-()``."""

    name = "phone_digits"
    filth_cls = PhoneFilth
    regex = re.compile(r"(?<!\w)\+?\(?\d(?:[ .\-()]{0,2}\d){9,14}(?!\w|[ .\-()]{1,2}\d)")

    def iter_filth(self, text: str, document_name: str | None = None) -> Iterator[Filth]:
        """Matches, except runs of years such as ``1972-1990 (1992)``, common in movie tags."""
        for filth in super().iter_filth(text, document_name=document_name):
            if not _YEARS_ONLY.fullmatch(filth.text):
                yield filth


class StrictUrlDetector(RegexDetector):
    """Any ``http(s)://`` or ``www.`` link up to the next space (stock one misses short domains)."""

    name = "url_strict"
    filth_cls = UrlFilth
    regex = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)


class SchemelessUrlDetector(RegexDetector):
    """``example.net/profile/jdoe``: dotted domain labels, a TLD (two lowercase letters, or a common generic
    one in any case), an optional port, then a path. Trailing punctuation (``.``, ``,``, ``)``) ends the link.
    Requiring the path and a TLD-like ending keeps ``notes.txt``, ``Mr.Smith``, ``Dr.No/...`` and
    ``3.14/2``."""

    name = "url_schemeless"
    filth_cls = UrlFilth
    regex = re.compile(
        r"(?<![\w.\-/:])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
        r"(?:[a-z]{2}|(?i:com|net|org|edu|gov|mil|int|info|biz|name|pro|app|dev|blog|shop|site|online|store|tech"
        r"|xyz|club|live|news|page|link|wiki|cloud|social|media|email|tv|io|ai|co))"
        r"(?::\d{1,5})?/(?:[^\s<>\"']*[^\s<>\"'.,;:!?)\]])?"
    )


class LinkAwareEmailDetector(EmailDetector):
    """scrubadub's email detector, except a spelled-out ``name at domain.tld`` followed by ``/``: a link."""

    name = "email"

    def iter_filth(self, text: str, document_name: str | None = None) -> Iterator[Filth]:
        """The stock matches, minus ``... at example.net`` directly followed by a path."""
        for filth in super().iter_filth(text, document_name=document_name):
            if "@" in filth.text or not text.startswith("/", filth.end):
                yield filth


@lru_cache(maxsize=1)
def _scrubber() -> scrubadub.Scrubber:
    """scrubadub's default detectors (email, phone, url, credit card, credentials...) plus ours."""
    scrubber = scrubadub.Scrubber()
    scrubber.remove_detector("email")
    for detector in (
        LinkAwareEmailDetector(),
        StrictEmailDetector(),
        CardNumberDetector(),
        DigitPhoneDetector(),
        StrictUrlDetector(),
        SchemelessUrlDetector(),
    ):
        scrubber.add_detector(detector)
    return scrubber


def scrub_text(text: str) -> str:
    """``text`` with emails, phone numbers, URLs and card numbers replaced by ``{{EMAIL}}``-style tags."""
    if not text:
        return text
    return _MERGED_TAG.sub(_distinct_kinds, _scrubber().clean(text))


def _distinct_kinds(match: re.Match[str]) -> str:
    """``{{EMAIL+EMAIL}}`` (two detectors, one address) reads as ``{{EMAIL}}``."""
    return "{{" + "+".join(sorted(set(match.group(1).split("+")))) + "}}"


def scrub_series(texts: pd.Series) -> tuple[pd.Series, int]:
    """Scrub each distinct string once; returns the scrubbed column and how many distinct strings changed."""
    present = texts.dropna()
    distinct = present.unique()
    cleaned = {text: scrub_text(text) for text in tqdm(distinct, desc="scrub PII", unit="text", disable=None)}
    changed = sum(1 for text, clean in cleaned.items() if text != clean)
    return texts.map(cleaned).astype(object).where(texts.notna(), None), changed


def tags_to_text(tags: pd.DataFrame) -> pd.Series:
    """Per item_id, its distinct tags (case-insensitive) joined, most frequent first, then first seen."""
    if tags.empty:
        return pd.Series(dtype=object)
    frame = tags[["item_id", "tag"]].assign(key=tags["tag"].str.lower(), order=range(len(tags)))
    grouped = frame.groupby(["item_id", "key"], sort=False).agg(
        tag=("tag", "first"), count=("tag", "size"), order=("order", "min")
    ).reset_index()
    grouped = grouped.sort_values(["item_id", "count", "order"], ascending=[True, False, True])
    return grouped.groupby("item_id", sort=False)["tag"].agg(TAG_SEPARATOR.join)


def item_texts(items: pd.DataFrame, tag_text: pd.Series) -> pd.Series:
    """The item's own text followed by its tag text."""
    tag_part = items["item_id"].map(tag_text).fillna("")
    both = (items["text"] != "") & (tag_part != "")
    return items["text"].where(~both, items["text"] + TAG_SEPARATOR) + tag_part


def detect_languages(items: pd.DataFrame, seed: int) -> pd.Series:
    """ISO 639-1 code per item from title and text; ``unknown`` when too short or undetectable."""
    DetectorFactory.seed = seed
    sample = items["title"].str.replace(_TRAILING_YEAR, "", regex=True) + ". " + items["text"]
    long_enough = sample.str.count(_LETTER.pattern) >= MIN_LANGUAGE_LETTERS
    distinct = sample[long_enough].unique()
    found = {
        text: _detect(text) for text in tqdm(distinct, desc="detect language", unit="item", disable=None)
    }
    return sample.map(found).where(long_enough, UNKNOWN_LANGUAGE).fillna(UNKNOWN_LANGUAGE)


def _detect(text: str) -> str:
    try:
        return detect(text)
    except LangDetectException:
        return UNKNOWN_LANGUAGE


def language_counts(languages: Sequence[str]) -> dict[str, int]:
    """Items per language, largest first."""
    return {str(k): int(v) for k, v in pd.Series(list(languages)).value_counts().items()}
