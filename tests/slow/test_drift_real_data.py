"""Drift monitor on MovieLens ml-latest-small: real drift across eras, none between random halves of users.

Reads the dataset from ``HYPERREC_DATASET_DIR`` (default ``../shared/datasets/ml-latest-small`` beside the
repository). Item embeddings are the movies' genre vectors (movies.csv), so the embedding checks run too
without a language model. Run with ``-s`` to see the scores.
"""

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperrec.monitoring.drift import run_drift_check
from hyperrec.monitoring.events import parse_time
from hyperrec.monitoring.windows import Window

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATASET_DIR = Path(
    os.environ.get("HYPERREC_DATASET_DIR", ROOT.parent / "shared" / "datasets" / "ml-latest-small")
)
EARLY_END = parse_time("2004-01-01")  # reference: 1996-2003
RECENT_START = parse_time("2015-01-01")  # current: 2015-2018


@pytest.fixture(scope="module")
def movielens():
    if not (DATASET_DIR / "ratings.csv").exists() or not (DATASET_DIR / "movies.csv").exists():
        pytest.skip(f"ml-latest-small not found at {DATASET_DIR} (set HYPERREC_DATASET_DIR)")
    ratings = pd.read_csv(DATASET_DIR / "ratings.csv")
    movies = pd.read_csv(DATASET_DIR / "movies.csv")
    index = dict(zip(movies["movieId"], range(len(movies))))
    events = pd.DataFrame({
        "user_id": ratings["userId"].astype(str),
        "item_id": ratings["movieId"].astype(str),
        "item_idx": ratings["movieId"].map(index).astype("int32"),
        "event": "rating",
        "timestamp": ratings["timestamp"].astype("int64"),
        "value": ratings["rating"].astype(float),
    })
    genres = sorted({g for text in movies["genres"] for g in text.split("|")})
    embeddings = np.array([[float(g in text.split("|")) for g in genres] for text in movies["genres"]])
    return events, embeddings


def _halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    users = np.sort(frame["user_id"].unique())
    chosen = set(np.random.default_rng(seed).choice(users, size=len(users) // 2, replace=False))
    mask = frame["user_id"].isin(chosen)
    return frame[mask], frame[~mask]


def _report(name, result, seconds=None):
    scores = ", ".join(
        f"{c.name}={c.score:.3f}{'*' if c.drift else ''}"
        + (f"(p={c.p_value:.2g})" if c.p_value is not None else "")
        for c in result.checks.values()
        if c.score is not None
    )
    wall = f" [{seconds:.1f} s]" if seconds is not None else ""
    print(f"\n{name}: drift_detected={result.drift_detected}{wall}: {scores}")


def test_early_years_vs_recent_years_report_drift(movielens, tmp_path):
    events, embeddings = movielens
    reference = Window.of("reference", events, "ratings.csv", end=EARLY_END)
    current = Window.of("current", events, "ratings.csv", start=RECENT_START)
    started = time.perf_counter()
    result = run_drift_check(reference, current, item_embeddings=embeddings, output_dir=tmp_path)
    _report("1996-2003 vs 2015-2018", result, time.perf_counter() - started)
    assert result.drift_detected
    # new movies and a different genre mix since 2003
    assert {"item_popularity", "item_embeddings", "profile_embeddings"} <= set(result.drifted_checks)
    assert result.checks["item_popularity"].score > 1.0
    assert result.windows["reference"]["last_event"] < "2004-01-01"
    assert result.windows["current"]["first_event"] >= "2015-01-01"
    assert (tmp_path / "drift_report.html").exists() and (tmp_path / "drift_summary.json").exists()


@pytest.mark.parametrize(
    ("period", "seed"),
    [("all", 0), ("all", 1), ("1996-2003", 0), ("2015-2018", 0)],
)
def test_two_random_halves_of_one_period_report_no_drift(movielens, period, seed):
    events, embeddings = movielens
    frame = {
        "all": events,
        "1996-2003": events[events["timestamp"] < EARLY_END],
        "2015-2018": events[events["timestamp"] >= RECENT_START],
    }[period]
    first, second = _halves(frame, seed)
    result = run_drift_check(first, second, item_embeddings=embeddings)
    _report(f"halves of {period} (seed {seed})", result)
    assert not result.drift_detected, result.drifted_checks


def test_a_synthetic_rating_shift_flags_rating_and_nothing_else(movielens):
    events, embeddings = movielens
    first, second = _halves(events, seed=0)
    second = second.assign(value=np.clip(second["value"] + 0.5, 0.5, 5.0))
    result = run_drift_check(first, second, item_embeddings=embeddings)
    _report("halves of all, current ratings +0.5 star", result)
    assert result.drifted_checks == ["rating"]
