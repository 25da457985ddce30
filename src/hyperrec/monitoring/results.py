"""Everything one drift-monitor run found (``DriftResult``) and the three files it writes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from evidently import __version__ as EVIDENTLY_VERSION

from hyperrec.monitoring.report import render_html
from hyperrec.monitoring.verdicts import CheckResult

REPORT_FILE = "drift_report.html"
SUMMARY_FILE = "drift_summary.json"
EVIDENTLY_FILE = "evidently.json"
SCHEMA_VERSION = 1


@dataclass
class DriftResult:
    """Everything one monitor run found; ``summary()`` is the JSON, ``html()`` the report page."""

    drift_detected: bool
    checks: dict[str, CheckResult]
    windows: dict[str, dict[str, Any]]
    quality: dict[str, Any]
    settings: dict[str, Any]
    generated_at: str
    wall_seconds: float
    evidently: dict[str, Any] = field(default_factory=dict, repr=False)
    sections: list[tuple[str, list[Any]]] = field(default_factory=list, repr=False)

    @property
    def drifted_checks(self) -> list[str]:
        return [name for name, check in self.checks.items() if check.drift]

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary (drift_summary.json): verdicts, windows, quality and settings, no widgets.

        Returns:
            schema_version, drift_detected, drifted_checks, generated_at, wall_seconds, evidently_version,
            windows, checks, quality and settings.
        """
        return {
            "schema_version": SCHEMA_VERSION,
            "drift_detected": self.drift_detected,
            "drifted_checks": self.drifted_checks,
            "generated_at": self.generated_at,
            "wall_seconds": round(self.wall_seconds, 3),
            "evidently_version": EVIDENTLY_VERSION,
            "windows": self.windows,
            "checks": {name: check.to_dict() for name, check in self.checks.items()},
            "quality": self.quality,
            "settings": self.settings,
        }

    def html(self) -> str:
        return render_html(self)

    def save(
        self,
        report_path: Path | None = None,
        summary_path: Path | None = None,
        evidently_path: Path | None = None,
    ) -> None:
        """Write whichever outputs have a path (parents are created; JSON has no NaN: null instead).

        Args:
            report_path: where the HTML report goes, or None.
            summary_path: where the summary JSON goes, or None.
            evidently_path: where the Evidently JSON goes, or None.
        """
        outputs = {
            report_path: self.html,
            summary_path: lambda: _to_json(self.summary()),
            evidently_path: lambda: _to_json(self.evidently),
        }
        for path, render in outputs.items():
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(render(), encoding="utf-8")

    def write(self, output_dir: str | Path) -> dict[str, Path]:
        """Write drift_report.html, drift_summary.json and evidently.json into ``output_dir``."""
        output_dir = Path(output_dir)
        paths = {
            "report": output_dir / REPORT_FILE,
            "summary": output_dir / SUMMARY_FILE,
            "evidently": output_dir / EVIDENTLY_FILE,
        }
        self.save(paths["report"], paths["summary"], paths["evidently"])
        return paths


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _to_json(tree: Any) -> str:
    return json.dumps(_plain(tree), indent=2, allow_nan=False)
