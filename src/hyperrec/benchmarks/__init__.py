"""Offline quality benchmarks on top of the pipeline steps (see docs/BENCHMARKS.md).

- ``quality``: ``run_quality`` — every baseline and language model trained and evaluated in one run, with a
  summary (ratios to the best baseline, fine-tuned vs zero-shot, LM vs ID-only ablation, training speed)
  and a self-contained HTML report.
- ``cold_start``: ``derive_cold_start`` / ``run_cold_start`` — a share of the items loses every train and
  validation event, the models are trained without them, and only the test users whose target is such a
  held-out item are evaluated.
- ``stages`` runs the steps of a benchmark, ``summary`` holds its statistics, ``report`` its markdown and
  HTML.
- ``cli``: ``add_benchmark_commands`` registers ``hyperrec bench quality``, ``cold-start``, ``bandits``,
  ``scale`` and ``debian-dataset`` on the ``bench`` group.

Public names are imported lazily, so that importing the package does not load torch or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_quality": "quality",
    "quality_summary": "summary",
    "QUALITY_MODELS": "quality",
    "ENCODER_MODELS": "quality",
    "ColdStartSettings": "cold_start",
    "ColdStartSplit": "cold_start",
    "select_cold_items": "cold_start",
    "derive_cold_start": "cold_start",
    "run_cold_start": "cold_start",
    "add_benchmark_commands": "cli",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
