"""The data report: what every step took in, kept, rejected and how long it ran.

Written as JSON (for MLflow: every numeric leaf becomes a metric, so sections are nested dicts, not lists)
and as Markdown for people. It holds counts only: never a user id or a piece of free text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepRecord:
    """One step's row counts, duration and any step-specific numbers."""

    rows_in: int | None = None
    rows_out: int | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        counts = {"rows_in": self.rows_in, "rows_out": self.rows_out, "seconds": round(self.seconds, 3)}
        return {**{k: v for k, v in counts.items() if v is not None}, **self.details}


@dataclass
class PrepReport:
    """Collects step records and summary sections; renders data_report.json and data_report.md."""

    steps: dict[str, StepRecord] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, rows_in: int | None = None) -> Iterator[StepRecord]:
        """Time a step; the caller fills in rows_out and details on the yielded record."""
        record = StepRecord(rows_in=rows_in)
        started = time.perf_counter()
        try:
            yield record
        finally:
            record.seconds = time.perf_counter() - started
            self.steps[name] = record

    def as_dict(self) -> dict[str, Any]:
        total = sum(record.seconds for record in self.steps.values())
        return {
            "steps": {name: record.as_dict() for name, record in self.steps.items()},
            "total_seconds": round(total, 3),
            **self.sections,
        }

    def write(self, json_path: Path, markdown_path: Path) -> None:
        report = self.as_dict()
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        markdown_path.write_text(render_markdown(report), encoding="utf-8")


def render_markdown(report: dict[str, Any]) -> str:
    """A steps table, then one table per summary section.

    Args:
        report: the data report dict: ``steps``, ``total_seconds`` and summary sections.

    Returns:
        The Markdown text.
    """
    lines = [
        "# Data report",
        "",
        "| step | rows in | rows out | seconds | details |",
        "|---|---|---|---|---|",
    ]
    for name, step in report["steps"].items():
        details = ", ".join(f"{k}: {_fmt(v)}" for k, v in step.items()
                            if k not in ("rows_in", "rows_out", "seconds"))
        lines.append(f"| {name} | {_fmt(step.get('rows_in', ''))} | {_fmt(step.get('rows_out', ''))} "
                     f"| {step['seconds']:.2f} | {details} |")
    lines += ["", f"Total: {report['total_seconds']:.1f} s", ""]
    for section, content in report.items():
        if section in ("steps", "total_seconds"):
            continue
        lines += [f"## {section.replace('_', ' ').capitalize()}", ""]
        lines += _section_lines(content) + [""]
    return "\n".join(lines)


def _section_lines(content: Any) -> list[str]:
    if not isinstance(content, dict):
        return [_fmt(content)]
    if not content:
        return ["(none)"]
    rows = ["| key | value |", "|---|---|"]
    for key, value in content.items():
        text = (
            ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) if isinstance(value, dict) else _fmt(value)
        )
        rows.append(f"| {key} | {text} |")
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
