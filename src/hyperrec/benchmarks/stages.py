"""Running a benchmark's pipeline steps in this process, timed, with each model's training figures.

``prepare`` gives the prepared-data folder (a fresh data prep or a given one); ``train_and_evaluate`` trains
the baselines and ``cfg.modeling.train`` and evaluates all of them (``hyperrec.steps``), timing each stage
and reading each model's fit seconds from the steps' own log lines. ``load_average`` and
``machine_description`` record what else shaped the wall time. Shared by the quality and cold-start
benchmarks.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.model_names import MODEL_FILE

#: The steps' own log lines that carry each model's fit time (see ``hyperrec.steps``).
_FIT_MESSAGES = ("fitted %s in %.1f s", "trained %s in %.1f s")


@dataclass(frozen=True)
class BenchRun:
    """What ``train_and_evaluate`` left behind."""

    prepared_dir: Path
    models_dirs: list[Path]
    evaluation_dir: Path
    metrics: dict[str, Any]
    stage_seconds: dict[str, float]
    training: dict[str, dict[str, Any]]


class RunClock:
    """Started with a benchmark run; ``facts`` gives the record's closing entries (quality and cold start)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.load_at_start = load_average()

    def facts(self, threads: int | None, stage_seconds: Mapping[str, float]) -> dict[str, Any]:
        """The date, the machine, the threads, each stage's seconds, the load averages at start and end and
        the wall seconds since the clock started."""
        return {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine_description(),
            "threads": threads,
            "stage_seconds": stage_seconds,
            "load_average": {"start": self.load_at_start, "end": load_average()},
            "wall_seconds": round(time.perf_counter() - self.started, 1),
        }


def new_run_id(kind: str) -> str:
    return f"bench-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def bench_config(cfg: HyperrecConfig, out_dir: Path, language_models: Sequence[str]) -> HyperrecConfig:
    """``cfg`` training exactly ``language_models``; MLflow beside the outputs unless a tracking URI is
    set."""
    updates: dict[str, Any] = {"modeling": cfg.modeling.model_copy(update={"train": list(language_models)})}
    if cfg.tracking.tracking_uri is None:
        # tracking.step_run puts the sqlite database and the artifacts beside output_dir.
        updates["output_dir"] = Path(out_dir) / "run"
    return cfg.model_copy(update=updates)


def prepare(cfg: HyperrecConfig, pipeline_run: str, out_dir: Path, prepared: Path | None,
            stage_seconds: dict[str, float]) -> Path:
    """The prepared-data folder: ``prepared`` as given, or a fresh data prep into ``out_dir/data``.

    Args:
        cfg: the configuration for data prep.
        pipeline_run: the run id passed to the step.
        out_dir: the benchmark folder; fresh data prep writes into ``out_dir/data``.
        prepared: an existing prepared-data folder to reuse, or None to run data prep.
        stage_seconds: stage name -> seconds; data prep's time is added here.

    Returns:
        The prepared-data folder.

    Raises:
        DataError: ``prepared`` is given but has no test split.
    """
    from hyperrec.data.prepared import PreparedData
    from hyperrec.steps import data_prep_step

    if prepared is not None:
        PreparedData(Path(prepared)).split("test")  # a clear DataError when the folder is incomplete
        return Path(prepared)
    target = Path(out_dir) / "data"
    with timed(stage_seconds, "data_prep"):
        data_prep_step(cfg, pipeline_run, target)
    return target


def train_and_evaluate(cfg: HyperrecConfig, pipeline_run: str, prepared_dir: Path, out_dir: Path,
                       stage_seconds: dict[str, float]) -> BenchRun:
    """Baselines and ``cfg.modeling.train`` into ``out_dir/models``, then ``evaluate_step`` of all of them.

    Args:
        cfg: the configuration for the three steps.
        pipeline_run: the run id passed to the steps.
        prepared_dir: the prepared-data folder.
        out_dir: the benchmark folder; ``models/`` and ``evaluation/`` in it are replaced.
        stage_seconds: stage name -> seconds; each step's time is added here.

    Returns:
        The run: folders, metrics, stage seconds and per-model training info.
    """
    from hyperrec.steps import evaluate_step, fine_tune_step, train_baselines_step

    out_dir = Path(out_dir)
    models_dirs = [out_dir / "models" / "baselines", out_dir / "models" / "language"]
    evaluation_dir = out_dir / "evaluation"
    for stale in (out_dir / "models", evaluation_dir):  # evaluate_step loads every folder it finds
        shutil.rmtree(stale, ignore_errors=True)
    with _captured_fit_seconds() as fit_seconds:
        with timed(stage_seconds, "train_baselines"):
            train_baselines_step(cfg, pipeline_run, prepared_dir, models_dirs[0])
        with timed(stage_seconds, "fine_tune"):
            fine_tune_step(cfg, pipeline_run, prepared_dir, models_dirs[1])
    with timed(stage_seconds, "evaluate"):
        metrics = evaluate_step(cfg, pipeline_run, prepared_dir, models_dirs, evaluation_dir)
    return BenchRun(prepared_dir=Path(prepared_dir), models_dirs=models_dirs, evaluation_dir=evaluation_dir,
                    metrics=metrics, stage_seconds=stage_seconds,
                    training=training_info(models_dirs, fit_seconds))


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Record the seconds the block took as ``seconds[name]`` (rounded to 0.1 s), even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - started, 1)


class _FitSeconds(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg in _FIT_MESSAGES and isinstance(record.args, tuple) and len(record.args) == 2:
            self.seconds[str(record.args[0])] = round(float(record.args[1]), 1)


@contextmanager
def _captured_fit_seconds() -> Iterator[dict[str, float]]:
    """Model name -> seconds, read from the steps' "fitted/trained <name> in <s> s" log lines."""
    handler = _FitSeconds()
    steps_logger = logging.getLogger("hyperrec.steps")
    level = steps_logger.level
    steps_logger.addHandler(handler)
    if not steps_logger.isEnabledFor(logging.INFO):
        steps_logger.setLevel(logging.INFO)
    try:
        yield handler.seconds
    finally:
        steps_logger.removeHandler(handler)
        steps_logger.setLevel(level)


def training_info(models_dirs: Sequence[Path], fit_seconds: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per saved model: the step's fit seconds and, for trained language models, their saved train result.

    Args:
        models_dirs: folders holding one subfolder per saved model; missing ones are skipped.
        fit_seconds: model name -> seconds its fit took in the step.

    Returns:
        Model name -> the known values among fit/train/validation seconds, examples, epochs and best epoch.
    """
    info: dict[str, dict[str, Any]] = {}
    for models_dir in models_dirs:
        if not Path(models_dir).is_dir():
            continue
        for path in sorted(Path(models_dir).iterdir()):
            if not path.is_dir():
                continue
            config: dict[str, Any] = {}
            if (path / MODEL_FILE).exists():
                config = json.loads((path / MODEL_FILE).read_text(encoding="utf-8"))
            result = config.get("train_result") or {}
            values = {
                "fit_seconds": fit_seconds.get(path.name),
                "train_seconds": _rounded(result.get("train_seconds")),
                "validation_seconds": _rounded(result.get("validation_seconds")),
                "examples": result.get("examples"),
                "examples_per_second": _rounded(result.get("examples_per_second")),
                "epochs_run": result.get("epochs_run"),
                "best_epoch": result.get("best_epoch"),
                "best_validation": result.get("best_metric"),
                "stopped_early": result.get("stopped_early"),
            }
            info[path.name] = {key: value for key, value in values.items() if value is not None}
    return info


def _rounded(value: Any, digits: int = 1) -> Any:
    return round(float(value), digits) if isinstance(value, (int, float)) else value


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (other work on the machine changes the wall time, not the metrics)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"
