"""``run_data_prep``: raw files in, the prepared-data folder (hyperrec.data.prepared) out.

Steps, in order: read and validate (user ids pseudonymized on read), drop interactions with unknown items,
drop exact duplicates, drop bot-like bursts, scrub PII from free text and detect item languages, label
positives, split in time, then derive training examples, profiles and segments from the train split.
Every removed row lands in quarantine.jsonl (written even when a later step fails) and every step's counts
and duration in the data report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from hyperrec.config import HyperrecConfig
from hyperrec.data import prepared
from hyperrec.data.cleaning import drop_bot_bursts, drop_duplicates, drop_saturated_users
from hyperrec.data.examples import build_examples
from hyperrec.data.fetch import locate_dataset
from hyperrec.data.labels import label_events
from hyperrec.data.prepared import PreparedData
from hyperrec.data.privacy_filter import privacy_filter
from hyperrec.data.profiles import ItemTextLookup, build_profiles
from hyperrec.data.pseudonymize import Pseudonymizer
from hyperrec.data.quarantine import Quarantine
from hyperrec.data.readers import LoadedData, drop_unknown_items, load_generic, load_movielens
from hyperrec.data.report import PrepReport, StepRecord
from hyperrec.data.segments import segment_users, user_features
from hyperrec.data.split import SplitResult, split_positives
from hyperrec.data.text import (
    UNKNOWN_LANGUAGE,
    detect_languages,
    item_texts,
    language_counts,
    scrub_series,
    tags_to_text,
)
from hyperrec.errors import DataError

logger = logging.getLogger(__name__)

STEPS = (
    "read",
    "privacy",
    "window",
    "unknown_items",
    "duplicates",
    "bot_bursts",
    "saturated_users",
    "text",
    "labels",
    "split",
    "examples",
    "profiles",
    "segments",
    "write",
)
#: Column types of the written tables (the contract of hyperrec.data.prepared); explicit so that an
#: all-null column (e.g. query in MovieLens) is still typed.
ITEMS_SCHEMA = pa.schema([("item_id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                          ("categories", pa.list_(pa.string())), ("language", pa.string()),
                          ("item_idx", pa.int32())])
INTERACTIONS_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("item_id", pa.string()), ("item_idx", pa.int32()), ("event", pa.string()),
    ("timestamp", pa.int64()), ("value", pa.float64()), ("dwell_seconds", pa.float64()),
    ("query", pa.string()), ("label", pa.bool_()),
])
SCHEMAS = {
    prepared.ITEMS_FILE: ITEMS_SCHEMA,
    prepared.INTERACTIONS_FILE: INTERACTIONS_SCHEMA,
    **{f"{name}.parquet": INTERACTIONS_SCHEMA for name in prepared.SPLITS},
    prepared.SEGMENTS_FILE: pa.schema([("user_id", pa.string()), ("segment", pa.int32())]),
    prepared.EXAMPLES_FILE: pa.schema([("user_id", pa.string()), ("item_idx", pa.int32()),
                                       ("timestamp", pa.int64()), ("negatives", pa.list_(pa.int32()))]),
    prepared.PROFILES_FILE: pa.schema([("user_id", pa.string()), ("profile", pa.string())]),
}
_EVENT_ID = "_event"


class _Run:
    """State shared by the steps of one run: config, report, quarantine and the progress bar."""

    def __init__(self, cfg: HyperrecConfig) -> None:
        self.cfg = cfg
        self.report = PrepReport()
        self.quarantine = Quarantine()
        self.progress = tqdm(total=len(STEPS), desc="data prep", unit="step", disable=None)

    @contextmanager
    def step(self, name: str, rows_in: int | None = None) -> Iterator[StepRecord]:
        self.progress.set_postfix_str(name)
        with self.report.step(name, rows_in) as record:
            yield record
        self.progress.update()
        logger.info("%s: rows in %s, out %s, %.2f s", name, record.rows_in, record.rows_out, record.seconds)


def run_data_prep(cfg: HyperrecConfig, output_dir: Path) -> PreparedData:
    """Read, validate, clean, pseudonymize, split and derive; write ``output_dir`` and return it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(cfg)
    try:
        loaded = _read(run)
        loaded.interactions = _privacy(run, loaded)
        loaded.interactions = _window(run, loaded.interactions)
        interactions, tags = _clean(run, loaded)
        items, interactions = _prepare_text(run, loaded.items, tags, interactions)
        interactions = _label(run, items, interactions)
        split = _split(run, interactions, loaded.has_timestamps)
        train = split.frames["train"]
        tables = {
            prepared.EXAMPLES_FILE: _examples(run, interactions, train, len(items)),
            prepared.PROFILES_FILE: _profiles(run, interactions, train, items),
            prepared.SEGMENTS_FILE: _segments(run, interactions, split, items),
            prepared.ITEMS_FILE: items,
            prepared.INTERACTIONS_FILE: _output(interactions),
            **{f"{name}.parquet": _output(frame) for name, frame in split.frames.items()},
        }
        _write(run, output_dir, tables)
    finally:
        run.progress.close()
        run.quarantine.write_jsonl(output_dir / prepared.QUARANTINE_FILE)
    run.report.sections.update(quarantine={"total": len(run.quarantine.records),
                                           "by_reason": run.quarantine.counts_by_reason()})
    run.report.write(output_dir / prepared.REPORT_JSON, output_dir / prepared.REPORT_MD)
    logger.info("data prep wrote %s in %.1f s", output_dir, run.report.as_dict()["total_seconds"])
    return PreparedData(output_dir)


def _read(run: _Run) -> LoadedData:
    with run.step("read") as step:
        pseudonymizer = Pseudonymizer.from_config(run.cfg.privacy)
        if run.cfg.data.format == "movielens":
            loaded = load_movielens(locate_dataset(run.cfg.data), pseudonymizer, run.quarantine)
        else:
            loaded = load_generic(run.cfg.data, pseudonymizer, run.quarantine)
        files = {name: {"rows_read": rows, "quarantined_on_read": run.quarantine.count(name)}
                 for name, rows in loaded.rows_read.items()}
        step.rows_in = loaded.rows_read[loaded.interactions_file]
        step.rows_out = len(loaded.interactions)
        step.details.update(items=len(loaded.items), tags=len(loaded.tags))
    run.report.sections["files"] = files
    run.report.sections["dataset"] = {"format": run.cfg.data.format, "timestamps": loaded.has_timestamps}
    return loaded


def _privacy(run: _Run, loaded: LoadedData) -> pd.DataFrame:
    """Drop forgotten users, users without consent and expired events (hyperrec.privacy), counted."""
    with run.step("privacy", len(loaded.interactions)) as step:
        interactions, counts = privacy_filter(run.cfg, loaded.interactions, loaded.has_timestamps)
        step.rows_out = len(interactions)
        step.details.update(counts)
    return interactions


def _window(run: _Run, interactions: pd.DataFrame) -> pd.DataFrame:
    """Keep the configured time window; events outside it are counted in the report, not quarantined."""
    start, end = run.cfg.data.window_start_unix, run.cfg.data.window_end_unix
    with run.step("window", len(interactions)) as step:
        keep = pd.Series(True, index=interactions.index)
        if start is not None:
            keep &= interactions["timestamp"] >= start
        if end is not None:
            keep &= interactions["timestamp"] < end
        step.rows_out = int(keep.sum())
        step.details.update(start_unix=start, end_unix=end, outside_window=int((~keep).sum()))
    return interactions[keep].reset_index(drop=True)


def _clean(run: _Run, loaded: LoadedData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unknown items (interactions and tags), duplicates, bursts, users without any possible negative; each a
    step of its own in the report."""
    interactions = loaded.interactions
    with run.step("unknown_items", len(interactions)) as step:
        interactions = drop_unknown_items(interactions, loaded.items["item_id"], run.quarantine)
        tags = drop_unknown_items(loaded.tags, loaded.items["item_id"], run.quarantine)
        step.details["tags_dropped"] = len(loaded.tags) - len(tags)
        step.rows_out = len(interactions)
    with run.step("duplicates", len(interactions)) as step:
        interactions = drop_duplicates(interactions, run.quarantine)
        step.rows_out = len(interactions)
    with run.step("bot_bursts", len(interactions)) as step:
        prep = run.cfg.prep
        if loaded.has_timestamps:
            interactions = drop_bot_bursts(interactions, prep.bot_max_events, prep.bot_window_seconds,
                                           run.quarantine)
        else:
            logger.warning("no timestamps: bot-burst detection skipped")
            step.details["skipped_no_timestamps"] = 1
        step.rows_out = len(interactions)
    with run.step("saturated_users", len(interactions)) as step:
        before = interactions["user_id"].nunique()
        interactions = drop_saturated_users(interactions, len(loaded.items), run.quarantine)
        step.details["users_dropped"] = before - interactions["user_id"].nunique()
        step.rows_out = len(interactions)
    if interactions.empty:
        raise DataError("no usable interactions are left after validation and cleaning; see quarantine.jsonl")
    return interactions, tags


def _prepare_text(run: _Run, items: pd.DataFrame, tags: pd.DataFrame,
                  interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scrub tags, item text and queries; build item text from tags; detect languages; index items."""
    items, tags, interactions = items.copy(), tags.copy(), interactions.copy()
    with run.step("text", len(items)) as step:
        if run.cfg.privacy.scrub_pii:
            tags["tag"], step.details["tags_with_pii"] = scrub_series(tags["tag"])
            items["text"], step.details["item_texts_with_pii"] = scrub_series(items["text"])
            interactions["query"], step.details["queries_with_pii"] = scrub_series(interactions["query"])
        items["text"] = item_texts(items, tags_to_text(tags))
        items["language"] = (detect_languages(items, run.cfg.seed) if run.cfg.prep.detect_language
                             else UNKNOWN_LANGUAGE)
        items["item_idx"] = np.arange(len(items), dtype=np.int32)
        step.rows_out = len(items)
        step.details["items_with_tags"] = int(tags["item_id"].nunique())
    run.report.sections["languages"] = language_counts(items["language"])
    return items[ITEMS_SCHEMA.names], interactions


def _label(run: _Run, items: pd.DataFrame, interactions: pd.DataFrame) -> pd.DataFrame:
    with run.step("labels", len(interactions)) as step:
        index = pd.Series(items["item_idx"].to_numpy(), index=items["item_id"])
        interactions = interactions.assign(
            item_idx=interactions["item_id"].map(index).fillna(-1).astype(np.int32),
            label=label_events(interactions, run.cfg.prep.min_rating, run.cfg.prep.min_dwell_seconds),
        )
        interactions = interactions.sort_values(["user_id", "timestamp", "item_idx"], kind="stable")
        interactions[_EVENT_ID] = np.arange(len(interactions))
        step.rows_out = len(interactions)
        step.details["positives"] = int(interactions["label"].sum())
        step.details["events"] = {str(k): int(v) for k, v in interactions["event"].value_counts().items()}
    return interactions


def _split(run: _Run, interactions: pd.DataFrame, has_timestamps: bool) -> SplitResult:
    positives = int(interactions["label"].sum())
    if positives == 0:
        raise DataError("no positive item events: check prep.min_rating and prep.min_dwell_seconds")
    with run.step("split", positives) as step:
        split = split_positives(interactions, run.cfg.prep, has_timestamps, run.cfg.seed)
        step.rows_out = sum(split.sizes().values())
    run.report.sections["split"] = {"method": split.method, **split.sizes(),
                                    "train_only_users": split.train_only_users}
    return split


def _examples(run: _Run, interactions: pd.DataFrame, train: pd.DataFrame, n_items: int) -> pd.DataFrame:
    prep = run.cfg.prep
    with run.step("examples", len(train)) as step:
        touched = interactions.loc[interactions["item_idx"] >= 0, ["user_id", "item_idx"]]
        examples = build_examples(
            train, touched, n_items, prep.negatives_per_positive, prep.negative_sampling, run.cfg.seed
        )
        step.rows_out = len(examples)
    return examples


def _profiles(
    run: _Run, interactions: pd.DataFrame, train: pd.DataFrame, items: pd.DataFrame
) -> pd.DataFrame:
    with run.step("profiles", train["user_id"].nunique()) as step:
        searches = interactions[(interactions["event"] == "search") & interactions["query"].notna()]
        profiles = build_profiles(train, searches, ItemTextLookup.from_items(items),
                                  max_items=run.cfg.prep.profile_max_items,
                                  max_tokens=run.cfg.prep.profile_max_tokens)
        step.rows_out = len(profiles)
    return profiles


def _segments(run: _Run, interactions: pd.DataFrame, split: SplitResult, items: pd.DataFrame) -> pd.DataFrame:
    """Segments from every event except the held-out validation and test events."""
    prep = run.cfg.prep
    with run.step("segments") as step:
        held_out = pd.concat([split.frames["validation"][_EVENT_ID], split.frames["test"][_EVENT_ID]])
        visible = interactions[~interactions[_EVENT_ID].isin(held_out)]
        result = segment_users(user_features(visible, items), prep.segments_k_min, prep.segments_k_max,
                               run.cfg.seed)
        step.rows_in = step.rows_out = len(result.assignments)
    run.report.sections["segments"] = {
        "k": result.k,
        "sizes": result.sizes(),
        "silhouette": {str(k): round(s, 4) for k, s in result.silhouette.items()},
    }
    return result.assignments


def _write(run: _Run, output_dir: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Each table with its documented columns and types."""
    with run.step("write") as step:
        for name, table in tables.items():
            table[SCHEMAS[name].names].to_parquet(output_dir / name, index=False, schema=SCHEMAS[name])
        step.details["files"] = len(tables)


def _output(interactions: pd.DataFrame) -> pd.DataFrame:
    """The documented interaction columns, without bookkeeping (_file, _row, _event)."""
    return interactions[INTERACTIONS_SCHEMA.names].reset_index(drop=True)
