r"""``hyperrec drift``: one drift check (or ``--watch``: one every N seconds), optionally with the retraining
trigger.

``hyperrec.cli.build_parser`` hooks it in with ``add_monitoring_commands(commands)``. The parser
carries the same ``--config`` / ``--set`` / ``--log-level`` options as every other subcommand
(``hyperrec.cli_options``). It lives with the pipelines, not in ``hyperrec.monitoring``, because ``--trigger``
runs the embedded training pipeline (``hyperrec.pipelines.runner``), and the pipelines import monitoring.

Examples::

    # the champion's prepared data vs new interaction files, report into outputs/monitoring
    hyperrec drift --prepared outputs/latest/data --current new_events/
    # MovieLens early years vs recent years, from one file
    hyperrec drift --reference ratings.csv --reference-end 2004-01-01 \
        --current ratings.csv --current-start 2015-01-01
    # the serving feedback log, last 7 days, every 15 minutes, with the retraining trigger
    hyperrec drift --prepared outputs/latest/data --current feedback.jsonl --current-days 7 --watch --trigger
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options, config_from_args
from hyperrec.monitoring.events import parse_time
from hyperrec.monitoring.settings import MonitoringConfig, source_path_or_uri

logger = logging.getLogger(__name__)


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither Unix seconds nor an ISO date/time") from None


def add_monitoring_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``drift`` on the ``hyperrec`` subparsers; returns its parser."""
    drift = subparsers.add_parser(
        "drift",
        help="compare a reference and a current window of events (Evidently); optionally trigger retraining",
        description="Drift of interaction features, embeddings, predictions and outcomes between two "
        "windows. Writes drift_report.html, drift_summary.json and evidently.json. See docs/MONITORING.md.",
    )
    add_common_options(drift)
    _add_source_options(drift.add_argument_group("sources"))
    _add_window_options(drift.add_argument_group("windows (ISO date/time or Unix seconds; [start, end))"))
    _add_run_options(drift.add_argument_group("running"))
    drift.set_defaults(handler=run_drift_command)
    return drift


def _add_source_options(src: Any) -> None:
    """Where the reference and current events, item index, embeddings and predictions come from."""
    ref = src.add_mutually_exclusive_group()
    ref.add_argument(
        "--prepared", type=Path, help="champion's prepared-data folder (reference = its interactions)"
    )
    ref.add_argument(
        "--reference",
        type=source_path_or_uri,
        help="reference events: file or folder (.parquet/.csv/.jsonl), a local path or an s3:// / "
        "gs:// URI; default: monitoring.sources.reference",
    )
    src.add_argument(
        "--reference-table",
        choices=["interactions", "train"],
        help="table of a prepared folder used as reference (default: monitoring.sources.reference_table)",
    )
    src.add_argument("--current", type=Path, required=True,
                     help="current events: interaction file/folder or the serving feedback log (JSONL)")
    src.add_argument(
        "--items",
        type=Path,
        help="item_id -> item_idx: a prepared items.parquet, or the raw items file data prep read "
        "(items.csv, movies.csv), numbered as data prep numbers it (default: the prepared one)",
    )
    src.add_argument(
        "--item-embeddings",
        type=Path,
        help=".npy catalogue embeddings, row = item_idx (default: monitoring.sources.item_embeddings)",
    )
    src.add_argument("--reference-profiles", type=Path, help=".npy user profile embeddings of the reference")
    src.add_argument(
        "--current-profiles", type=Path, help=".npy user profile embeddings of the current window"
    )
    src.add_argument(
        "--reference-predictions", type=Path, help="served recommendations: item_id[, user_id, score]"
    )
    src.add_argument("--current-predictions", type=Path, help="served recommendations of the current window")


def _add_window_options(win: Any) -> None:
    """Each side's [start, end) bounds, or its last N days."""
    for side in ("reference", "current"):
        win.add_argument(f"--{side}-start", type=_time, help=f"first instant of the {side} window")
        win.add_argument(f"--{side}-end", type=_time, help=f"end (exclusive) of the {side} window")
        win.add_argument(f"--{side}-days", type=float,
                         help=f"last N days of the {side} source (overrides monitoring.windows.{side}_days)")


def _add_run_options(run: Any) -> None:
    """Output folder, watching, and triggering the retraining pipeline."""
    run.add_argument("--output-dir", type=Path, help="report folder (default: monitoring.output_dir)")
    run.add_argument("--watch", action="store_true", help="check again every --interval seconds")
    run.add_argument(
        "--interval", type=float, help="seconds between checks (default: monitoring.watch_interval_seconds)"
    )
    run.add_argument("--max-checks", type=int, help="stop --watch after this many checks (default: never)")
    run.add_argument("--trigger", action="store_true",
                     help="start the retraining pipeline when drift or low quality says so (KFP when "
                     "monitoring.trigger.kfp.host is set, else embedded)")
    run.add_argument(
        "--pipeline-run", help="id of the retraining run to start (default: retrain-<time>-<hex>)"
    )


def _settings(args: argparse.Namespace) -> tuple[Any, MonitoringConfig]:
    cfg = config_from_args(args)
    settings = cfg.monitoring
    updates = {}
    if args.reference_days is not None:
        updates["reference_days"] = args.reference_days
    if args.current_days is not None:
        updates["current_days"] = args.current_days
    if updates:
        settings = settings.model_copy(update={"windows": settings.windows.model_copy(update=updates)})
    return cfg, settings


def build_trigger(cfg: Any, settings: MonitoringConfig, output_dir: Path | None = None):
    """The trigger ``--trigger`` uses: KFP when a host is configured, else the embedded training pipeline."""
    from hyperrec.monitoring.launchers import KfpLauncher, LocalLauncher
    from hyperrec.monitoring.trigger import MlflowDecisionRecorder, RetrainTrigger
    from hyperrec.pipelines.runner import local_training_runner

    kfp_settings = settings.trigger.kfp
    launcher = KfpLauncher.from_settings(kfp_settings) if kfp_settings.host else LocalLauncher(
        local_training_runner(cfg))
    artifact_location = None
    if getattr(cfg.tracking, "tracking_uri", None) is None:
        artifact_location = (cfg.output_dir.parent / "mlartifacts").resolve().as_uri()
    recorder = MlflowDecisionRecorder(cfg.mlflow_uri(), settings.trigger.mlflow_experiment, artifact_location)
    log = settings.trigger.decision_log or (output_dir or settings.output_dir) / "decisions.jsonl"
    return RetrainTrigger(settings, launcher, decision_log=log, recorder=recorder, config_yaml=cfg.to_json())


def _local_reference(reference: Path | str, workdir: Path) -> Path:
    """The reference as a local path: an object-store URI is downloaded under ``workdir`` (once per
    command)."""
    from hyperrec.monitoring.object_store import download, is_remote_uri

    return download(str(reference), workdir) if is_remote_uri(reference) else Path(reference)


def _sources(args: argparse.Namespace, settings: MonitoringConfig, workdir: Path) -> Any:
    from hyperrec.errors import ConfigError
    from hyperrec.monitoring.sources import Sources

    reference = args.prepared or args.reference or settings.sources.reference
    if reference is None:
        raise ConfigError(
            "no reference window: pass --prepared or --reference, or set monitoring.sources.reference"
        )
    return Sources(
        reference=_local_reference(reference, workdir),
        current=args.current,
        reference_table=args.reference_table or settings.sources.reference_table,
        items=args.items or settings.sources.items,
        item_embeddings=args.item_embeddings or settings.sources.item_embeddings,
        reference_profiles=args.reference_profiles,
        current_profiles=args.current_profiles,
        reference_predictions=args.reference_predictions,
        current_predictions=args.current_predictions,
    )


def run_drift_command(args: argparse.Namespace, trigger: Any = None, sleep=time.sleep) -> int:
    """Handler of ``hyperrec drift``; returns the number of checks run (tests inject
    ``trigger``/``sleep``)."""
    cfg, settings = _settings(args)
    if args.trigger and trigger is None:
        trigger = build_trigger(cfg, settings, args.output_dir or settings.output_dir)
    with tempfile.TemporaryDirectory(prefix="hyperrec-drift-") as workdir:
        return _check_loop(args, settings, _sources(args, settings, Path(workdir)), trigger, sleep)


def _check_loop(
    args: argparse.Namespace, settings: MonitoringConfig, sources: Any, trigger: Any, sleep
) -> int:
    """One check, or with --watch one every interval; each may end in a retraining decision."""
    from hyperrec.errors import HyperrecError
    from hyperrec.monitoring.sources import Bounds, check_windows, load_windows
    from hyperrec.monitoring.trigger import FAILED, MonitoringError

    bounds = Bounds(args.reference_start, args.reference_end, args.current_start, args.current_end)
    output_dir = args.output_dir or settings.output_dir
    interval = args.interval if args.interval is not None else settings.watch_interval_seconds
    checks = 0
    while True:
        checks += 1
        try:
            reference, current = load_windows(sources, bounds, settings)
            result = check_windows(reference, current, sources, settings, output_dir=output_dir)
        except HyperrecError as exc:
            if not args.watch:
                raise
            logger.error("drift check %d failed: %s", checks, exc)  # --watch goes on: the source may recover
            sys.stdout.write(f"drift check failed: {exc}\n")
            if args.max_checks is not None and checks >= args.max_checks:
                return checks
            sleep(interval)
            continue
        paths = {"report": output_dir / "drift_report.html", "summary": output_dir / "drift_summary.json"}
        sys.stdout.write(
            f"drift detected: {'yes' if result.drift_detected else 'no'}"
            f"{' (' + ', '.join(result.drifted_checks) + ')' if result.drifted_checks else ''}"
            f" | quality: {result.quality['status']}"
            f" | {result.windows['reference']['rows']} vs {result.windows['current']['rows']} rows"
            f" | {result.wall_seconds:.1f} s\nreport:  {paths['report']}\nsummary: {paths['summary']}\n"
        )
        if settings.pushgateway_url:
            _push_metrics(result, settings.pushgateway_url)
        if args.trigger:
            _publish_latest_window(current.frame, settings)
            decision = trigger.decide(result, pipeline_run=args.pipeline_run, summary_path=paths["summary"],
                                      report_path=paths["report"], current_window=current.frame)
            sys.stdout.write(f"retraining: {decision.decision} - {decision.reason}\n")
            if decision.decision == FAILED and not args.watch:
                raise MonitoringError(f"retraining decision failed: {decision.reason}")
        sys.stdout.flush()
        if not args.watch or (args.max_checks is not None and checks >= args.max_checks):
            return checks
        sleep(interval)


def _publish_latest_window(frame: Any, settings: MonitoringConfig) -> None:
    """Keep ``<current_uri>/latest/`` equal to the window just checked, for runs that import the newest events
    without a drift decision of their own (the weekly recurring run)."""
    from hyperrec.monitoring.object_store import LATEST, is_remote_uri, upload_snapshot

    kfp = settings.trigger.kfp
    if kfp.host and kfp.current_uri and is_remote_uri(str(kfp.current_uri)):
        upload_snapshot(frame, str(kfp.current_uri), LATEST)


def _push_metrics(result: Any, gateway: str) -> None:
    """Push the drift gauges; a Pushgateway outage must not stop the check or the retraining decision (the
    HyperrecDriftCheckStale alert notices missing pushes)."""
    from hyperrec.monitoring.metrics import push_drift_metrics

    try:
        push_drift_metrics(result, gateway)
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
        logger.error("could not push drift gauges to %s: %s", gateway, exc)
