"""The cold-start benchmark: how well do the models recommend items they never saw a training event of?

Protocol (``derive_cold_start``, then ``run_cold_start``):

1. From a prepared folder, draw ``fraction`` of the items that have any positive event (train, validation or
   test), uniformly without replacement with ``numpy.random.default_rng(seed)``: ``round(fraction * n)``
   items, at least one. These are the held-out (cold) items.
2. Write a derived prepared folder: every train and validation event of a held-out item is removed;
   ``test.parquet`` keeps only the test events on held-out items, so the evaluated users are exactly the
   users whose test target is a held-out item. ``items.parquet`` is copied unchanged (same catalogue and
   item_idx, the held-out items keep their text). ``interactions.parquet`` loses every event of a held-out
   item except the kept test events; ``examples.parquet`` and ``profiles.parquet`` are rebuilt from the
   reduced train split (held-out items are never drawn as negatives either); segments, the data report and
   the quarantine are copied. ``cold_start.json`` records the draw.
3. Train the baselines and ``ColdStartSettings.models`` (default next_item_lm, next_item_id, zero_shot_lm)
   on the derived folder and evaluate them on its test split under both protocols. Histories at test time
   are train + validation, which hold no held-out item.

The catalogue is unchanged, so the next-item models know the held-out items' texts while they train; they
treat items without a train event as text-only (never softmax classes, no ID embedding, the shared cold
bias), which is how a truly new item arrives at serving time. ``next_item.id_dropout`` trains that text-only
path on warm items too, so that it is on the scale of learned-ID scores, and ``next_item.cold_slot`` lets one
cold item (by default the one closest in text to the user's recent history) take rank 10 when its calibrated
score reaches the warm item there (``hyperrec.online.cold_items``).
Baselines that learn only from events (popularity, item-kNN, ALS, BPR) have nothing to score a held-out item
with and land near zero on the full protocol: that is the expected result, not a bug.

Outputs in ``out_dir``: ``data/`` (the source prep, unless given), ``cold_data/`` (the derived folder),
``models/``, ``evaluation/`` (evaluate_step's files), ``metrics.json`` (evaluate's schema, ``hr@K_se`` added,
and a ``cold_start`` block), ``metrics.md`` and ``report.html``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from hyperrec.benchmarks.report import (
    METRICS_FILE,
    REPORT_FILE,
    TABLE_FILE,
    headline_plot,
    headline_table,
    html_list,
    html_page,
    load_text,
    training_columns,
)
from hyperrec.benchmarks.stages import RunClock, bench_config, new_run_id, prepare, timed, train_and_evaluate
from hyperrec.benchmarks.summary import add_hit_rate_errors
from hyperrec.config import HyperrecConfig, PrepConfig
from hyperrec.data.prepared import (
    EXAMPLES_FILE,
    INTERACTIONS_FILE,
    PROFILES_FILE,
    SPLITS,
    PreparedData,
)
from hyperrec.errors import DataError

logger = logging.getLogger(__name__)

SELECTION_FILE = "cold_start.json"
COLD_MODELS = ("next_item_lm", "next_item_id", "zero_shot_lm")
_KEY = ["user_id", "item_idx", "timestamp"]


class ColdStartSettings(BaseModel):
    """What the cold-start benchmark holds out and trains."""

    model_config = ConfigDict(extra="forbid")

    fraction: float = Field(0.1, gt=0, lt=1, description="Share of the items with a positive event held out.")
    seed: int | None = Field(None, description="Seed of the draw; None: the config's seed.")
    models: list[Literal["next_item_lm", "next_item_id", "zero_shot_lm", "bi_encoder", "cross_encoder"]] = (
        Field(
            list(COLD_MODELS),
            description="Language models trained on the derived folder (baselines always are).",
        )
    )


@dataclass(frozen=True)
class ColdStartSplit:
    """The draw and what it removed (written as ``cold_start.json`` into the derived folder)."""

    fraction: float
    seed: int
    candidate_items: int
    held_out_items: list[int]
    held_out_item_ids: list[str]
    removed_events: dict[str, int]
    test_users: int
    cold_test_users: int
    cold_test_events: int
    #: Over re-draws of the held-out set: expected number of cold test users and its standard error.
    expected_cold_test_users: float
    cold_test_users_se: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_cold_items(data: PreparedData, fraction: float, seed: int) -> np.ndarray:
    """Sorted item_idx of ``round(fraction * n)`` (at least 1) of the n items with a positive event."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    candidates = _candidates(data)
    if len(candidates) == 0:
        raise DataError("no item has a positive event to hold out")
    size = max(1, int(round(fraction * len(candidates))))
    return np.sort(np.random.default_rng(seed).choice(candidates, size=size, replace=False))


def _candidates(data: PreparedData) -> np.ndarray:
    indices = pd.concat([data.split(s)["item_idx"] for s in SPLITS], ignore_index=True).to_numpy(np.int64)
    return np.unique(indices[indices >= 0])


def _count_spread(test: pd.DataFrame, n_candidates: int, n_held_out: int) -> tuple[float, float]:
    """Mean and standard deviation of the number of test users hit by a uniform draw of ``n_held_out`` of
    ``n_candidates`` items (exact for one test event a user, as in leave-last-out; else per event)."""
    counts = test.groupby("item_idx").size().to_numpy(np.float64)
    p = n_held_out / n_candidates
    mean = p * counts.sum()
    if n_candidates < 2:
        return mean, 0.0
    variance = p * (1 - p) * n_candidates / (n_candidates - 1) * (
        (counts**2).sum() - counts.sum() ** 2 / n_candidates)
    return float(mean), float(math.sqrt(max(variance, 0.0)))


def _write(frame: pd.DataFrame, path: Path) -> None:
    from hyperrec.data.prep import SCHEMAS

    schema = SCHEMAS[path.name]
    frame[schema.names].to_parquet(path, index=False, schema=schema)


def derive_cold_start(source: Path, target: Path, *, fraction: float = 0.1, seed: int = 42,
                      prep: PrepConfig | None = None, examples_seed: int = 42) -> ColdStartSplit:
    """Write the derived prepared folder ``target`` from ``source`` (protocol in the module docstring).

    Args:
        source: a prepared-data folder (data prep's output).
        target: the derived folder to write; it must differ from ``source`` and be empty, missing or an
            earlier cold-start folder (it is replaced).
        fraction: share of the items with a positive event held out.
        seed: seed of the draw.
        prep: rebuilds examples.parquet and profiles.parquet as data prep would (default: the default prep
            settings), with ``examples_seed``.
        examples_seed: seed of the negative sampling of examples.parquet.

    Returns:
        The draw and what it removed, also written as ``cold_start.json`` into ``target``.

    Raises:
        DataError: ``target`` is not a folder to write, or no test target is among the held-out items.
    """
    prep = prep or PrepConfig()
    source, target = Path(source), Path(target)
    _check_target(source, target)
    data = PreparedData(source)
    held_out = select_cold_items(data, fraction, seed)
    splits = {name: data.split(name) for name in SPLITS}
    cold = {name: frame["item_idx"].isin(held_out) for name, frame in splits.items()}
    test = splits["test"][cold["test"]]
    if test.empty:
        raise DataError(f"none of the {len(held_out)} held-out items is a test target; raise the fraction or "
                        "change the seed")
    train = splits["train"][~cold["train"]]
    interactions = _without_held_out(data.interactions, held_out, test)
    tables = {"train.parquet": train, "validation.parquet": splits["validation"][~cold["validation"]],
              "test.parquet": test, INTERACTIONS_FILE: interactions,
              **_rebuilt_tables(data, train, interactions, held_out, prep, examples_seed)}
    _write_folder(source, target, tables)
    split = _split_record(data, splits, cold, test, held_out, fraction=fraction, seed=seed)
    (target / SELECTION_FILE).write_text(json.dumps(split.to_dict(), indent=1), encoding="utf-8")
    logger.info("cold start: %d of %d items held out (seed %d); removed %d train and %d validation events; "
                "%d of %d test users have a held-out target", len(held_out), split.candidate_items, seed,
                split.removed_events["train"], split.removed_events["validation"], split.cold_test_users,
                split.test_users)
    return split


def _check_target(source: Path, target: Path) -> None:
    if target.resolve() == source.resolve():
        raise DataError("the cold-start folder must differ from its source", file=str(target))
    if target.exists() and any(target.iterdir()) and not (target / SELECTION_FILE).exists():
        raise DataError("refusing to overwrite a folder that is not a cold-start folder", file=str(target))


def _without_held_out(interactions: pd.DataFrame, held_out: np.ndarray, test: pd.DataFrame) -> pd.DataFrame:
    """Every event of a held-out item removed, except the kept test events."""
    kept_test = test[_KEY].drop_duplicates().assign(_kept=True)
    marked = interactions.merge(kept_test, on=_KEY, how="left")
    return interactions[(~interactions["item_idx"].isin(held_out)) | marked["_kept"].notna().to_numpy()]


def _rebuilt_tables(data: PreparedData, train: pd.DataFrame, interactions: pd.DataFrame, held_out: np.ndarray,
                    prep: PrepConfig, examples_seed: int) -> dict[str, pd.DataFrame]:
    """examples.parquet and profiles.parquet from the reduced train split; held-out items are never
    negatives."""
    from hyperrec.data.examples import build_examples
    from hyperrec.data.profiles import ItemTextLookup, build_profiles

    touched = interactions.loc[interactions["item_idx"] >= 0, ["user_id", "item_idx"]]
    users = pd.unique(pd.concat([train["user_id"], touched["user_id"]]))
    never_negative = pd.DataFrame({"user_id": np.repeat(users, len(held_out)),
                                   "item_idx": np.tile(held_out, len(users))})
    examples = build_examples(train, pd.concat([touched, never_negative], ignore_index=True), data.n_items,
                              prep.negatives_per_positive, prep.negative_sampling, examples_seed)
    searches = interactions[(interactions["event"] == "search") & interactions["query"].notna()]
    profiles = build_profiles(train, searches, ItemTextLookup.from_items(data.items),
                              max_items=prep.profile_max_items, max_tokens=prep.profile_max_tokens)
    return {EXAMPLES_FILE: examples, PROFILES_FILE: profiles}


def _write_folder(source: Path, target: Path, tables: dict[str, pd.DataFrame]) -> None:
    """``target`` anew: ``tables`` written, every other file of ``source`` copied (the selection excepted)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.name not in tables and path.name != SELECTION_FILE:
            shutil.copy2(path, target / path.name)
    for name, frame in tables.items():
        _write(frame, target / name)


def _split_record(data: PreparedData, splits: dict[str, pd.DataFrame], cold: dict[str, pd.Series],
                  test: pd.DataFrame, held_out: np.ndarray, *, fraction: float, seed: int) -> ColdStartSplit:
    """The draw's record; ``test`` is the kept test split (the events on held-out items)."""
    n_candidates = len(_candidates(data))
    expected, spread = _count_spread(splits["test"], n_candidates, len(held_out))
    item_ids = data.items.set_index("item_idx")["item_id"].astype(str)
    return ColdStartSplit(
        fraction=fraction, seed=seed, candidate_items=n_candidates,
        held_out_items=[int(i) for i in held_out], held_out_item_ids=item_ids.loc[held_out].tolist(),
        removed_events={"train": int(cold["train"].sum()), "validation": int(cold["validation"].sum())},
        test_users=int(splits["test"]["user_id"].nunique()), cold_test_users=int(test["user_id"].nunique()),
        cold_test_events=len(test), expected_cold_test_users=round(expected, 2),
        cold_test_users_se=round(spread, 2),
    )


def run_cold_start(cfg: HyperrecConfig, out_dir: Path, *, settings: ColdStartSettings | None = None,
                   prepared: Path | None = None, pipeline_run: str | None = None) -> dict[str, Any]:
    """Run the cold-start benchmark into ``out_dir``; returns what ``metrics.json`` holds.

    Args:
        cfg: the configuration; its seed draws the held-out items unless ``settings.seed`` is set.
        out_dir: the folder for every output (module docstring).
        settings: the share held out, the seed and the language models (default: ``ColdStartSettings()``).
        prepared: a prepared-data folder to derive from instead of running data prep.
        pipeline_run: the MLflow grouping tag (default: ``bench-cold-start-<time>``).

    Returns:
        The evaluation's metrics with ``hr@K_se`` and the ``cold_start`` block.
    """
    settings = settings or ColdStartSettings()
    clock = RunClock()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline_run = pipeline_run or new_run_id("cold-start")
    seed = cfg.seed if settings.seed is None else settings.seed
    bench_cfg = bench_config(cfg, out_dir, settings.models)
    stages: dict[str, float] = {}
    source = prepare(bench_cfg, pipeline_run, out_dir, prepared, stages)
    cold_dir = out_dir / "cold_data"
    with timed(stages, "derive"):
        split = derive_cold_start(source, cold_dir, fraction=settings.fraction, seed=seed, prep=cfg.prep,
                                  examples_seed=cfg.seed)
    run = train_and_evaluate(bench_cfg, pipeline_run, cold_dir, out_dir, stages)

    metrics = add_hit_rate_errors(run.metrics)
    metrics["cold_start"] = {
        **{k: v for k, v in split.to_dict().items() if k not in ("held_out_items", "held_out_item_ids")},
        "held_out_items": len(split.held_out_items),
        "source_dir": str(source),
        "cold_dir": str(cold_dir),
        "language_models": list(settings.models),
        "training": run.training,
        "pipeline_run": pipeline_run,
        **clock.facts(cfg.threads, stages),
    }
    _write_outputs(out_dir, metrics)
    logger.info("cold-start benchmark finished in %.0f s: %s", metrics["cold_start"]["wall_seconds"],
                out_dir / TABLE_FILE)
    return metrics


def _cold_start_table(metrics: dict[str, Any], block: dict[str, Any]) -> tuple[str, list[str]]:
    notes = [
        f"{block['held_out_items']} of {block['candidate_items']} items held out (fraction "
        f"{block['fraction']}, "
        f"seed {block['seed']}); {block['removed_events']['train']} train and "
        f"{block['removed_events']['validation']} validation events removed",
        f"{block['cold_test_users']} of {block['test_users']} test users have a held-out test target and are "
        "the only users evaluated (a re-draw of the held-out set gives "
        f"{block['expected_cold_test_users']:.0f}"
        f" ±{block['cold_test_users_se']:.0f} of them)",
        "± is the per-user standard error of the mean over those users (HR: sqrt(p(1-p)/(n-1)))",
        "baselines learn only from events, so a held-out item gets no score of its own: ~0 on full ranking "
        "is the expected result",
    ]
    return headline_table(metrics, training_columns(block["training"])), notes


def _write_outputs(out_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, metrics.md and report.html of a cold-start run (``metrics`` holds its block)."""
    from hyperrec.evaluation.tables import metrics_table

    block = metrics["cold_start"]
    table, notes = _cold_start_table(metrics, block)
    caption = (f"Cold start: test users whose test target is one of the held-out items; {block['date']} on "
               f"{block['machine']}; wall {block['wall_seconds']:.0f} s; {load_text(block['load_average'])}")
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (out_dir / TABLE_FILE).write_text(
        f"# Cold-start benchmark\n\n{caption}\n\n{table}\n\n" + "".join(f"- {n}\n" for n in notes)
        + f"\n## Every metric\n\n{metrics_table(metrics)}\n", encoding="utf-8")
    page = html_page(
        "hyperrec cold-start benchmark",
        {"date": block["date"], "machine": block["machine"], "wall time": f"{block['wall_seconds']:.0f} s",
         "load": load_text(block["load_average"]),
         "evaluated users": str(block["cold_test_users"]), "held-out items": str(block["held_out_items"])},
        [("Headline metrics", headline_table(metrics, training_columns(block["training"]), tablefmt="html")),
         ("Protocol", html_list(notes))],
        headline_plot(metrics, "Cold start"),
    )
    (out_dir / REPORT_FILE).write_text(page, encoding="utf-8")
