"""The drift monitor's inputs: read the two sources, cut the windows, run the checks on them.

Used by ``hyperrec drift`` (``check_sources``) and by the drift step (``hyperrec.steps.drift``), which also
records an MLflow run like every other pipeline step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hyperrec.data.files import load_array, read_frame
from hyperrec.errors import DataError
from hyperrec.monitoring.drift import run_drift_check
from hyperrec.monitoring.events import read_events, read_item_index
from hyperrec.monitoring.results import DriftResult
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.monitoring.windows import Window, last_days_bounds, select_window

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sources:
    """Where the two windows (and the optional embeddings and predictions) come from."""

    reference: Path
    current: Path
    reference_table: str = "interactions"
    items: Path | None = None
    item_embeddings: Path | None = None
    reference_profiles: Path | None = None
    current_profiles: Path | None = None
    reference_predictions: Path | None = None
    current_predictions: Path | None = None


@dataclass(frozen=True)
class Bounds:
    """Explicit half-open Unix-second bounds; None falls back to ``monitoring.windows`` (then: everything)."""

    reference_start: int | None = None
    reference_end: int | None = None
    current_start: int | None = None
    current_end: int | None = None


def _item_index(sources: Sources) -> dict[str, int] | None:
    if sources.items is not None:
        return read_item_index(sources.items)
    if sources.reference.is_dir() and (sources.reference / "items.parquet").exists():
        return read_item_index(sources.reference / "items.parquet")
    return None


def _bounded(frame: pd.DataFrame, start: int | None, end: int | None, days: float | None
             ) -> tuple[int | None, int | None]:
    if start is not None or end is not None or days is None:
        return start, end
    return last_days_bounds(select_window(frame, start, end), days)


def load_windows(sources: Sources, bounds: Bounds, settings: MonitoringConfig) -> tuple[Window, Window]:
    """Read both sources and keep each window's rows.

    Args:
        sources: where the reference and current events (and the items) are.
        bounds: the requested start and end of each window; a missing bound comes from the window lengths.
        settings: the monitoring settings (feedback reading and window lengths).

    Returns:
        The reference and current windows.

    Raises:
        DataError: a source cannot be read or a window is empty.
    """
    item_index = _item_index(sources)
    reference = read_events(sources.reference, item_index=item_index, feedback=settings.feedback,
                            table=sources.reference_table)
    current = read_events(sources.current, item_index=item_index, feedback=settings.feedback)
    ref_start, ref_end = _bounded(reference, bounds.reference_start, bounds.reference_end,
                                  settings.windows.reference_days)
    cur_start, cur_end = _bounded(
        current, bounds.current_start, bounds.current_end, settings.windows.current_days
    )
    ref_window = Window.of("reference", reference, str(sources.reference), ref_start, ref_end)
    cur_window = Window.of("current", current, str(sources.current), cur_start, cur_end)
    for window in (ref_window, cur_window):
        if window.frame.empty:
            raise DataError(f"the {window.name} window is empty", file=window.source)
    return ref_window, cur_window


EXPECTED_PREDICTIONS = "served recommendations (.parquet, .csv, .jsonl) with item_id[, user_id, score]"
EXPECTED_EMBEDDINGS = "a NumPy .npy array with one row per item_idx (or per user, for profiles)"


def _read_predictions(path: Path) -> pd.DataFrame:
    return read_frame(path, EXPECTED_PREDICTIONS)


def _read_embeddings(path: Path) -> np.ndarray:
    return load_array(path, EXPECTED_EMBEDDINGS)


def _load_optional(path: Path | None, reader: Callable[[Path], Any]) -> Any:
    return None if path is None else reader(path)


def check_sources(
    sources: Sources, bounds: Bounds, settings: MonitoringConfig, output_dir: Path | None = None
) -> DriftResult:
    """Load the windows and extras, run every drift check, and write the outputs when ``output_dir`` is
    set."""
    return check_windows(*load_windows(sources, bounds, settings), sources, settings, output_dir)


def check_windows(
    reference: Window, current: Window, sources: Sources, settings: MonitoringConfig,
    output_dir: Path | None = None,
) -> DriftResult:
    """Run every drift check on windows already loaded (the caller keeps them, e.g. to upload the current
    one).

    Args:
        reference: the reference window.
        current: the current window.
        sources: where the optional embeddings, profiles and predictions are.
        settings: the monitoring settings.
        output_dir: where the outputs are written; None writes nothing.

    Returns:
        The drift result.
    """
    return run_drift_check(
        reference,
        current,
        settings,
        item_embeddings=_load_optional(sources.item_embeddings, _read_embeddings),
        reference_profiles=_load_optional(sources.reference_profiles, _read_embeddings),
        current_profiles=_load_optional(sources.current_profiles, _read_embeddings),
        reference_predictions=_load_optional(sources.reference_predictions, _read_predictions),
        current_predictions=_load_optional(sources.current_predictions, _read_predictions),
        output_dir=output_dir,
    )
