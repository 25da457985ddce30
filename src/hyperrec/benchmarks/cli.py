"""``hyperrec bench quality``, ``cold-start``, ``bandits``, ``scale`` and ``debian-dataset``.

Each ``add_<name>_command(bench_commands)`` registers one sub-command on the ``bench`` group's subparsers;
``add_benchmark_commands`` registers all of them. ``hyperrec.cli`` builds the ``bench`` group (with
``bench serve`` from ``hyperrec.serving.bench_cli``) and calls it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options, config_from_args

DEFAULT_QUALITY_DIR = Path("outputs/bench/quality")
DEFAULT_COLD_START_DIR = Path("outputs/bench/cold_start")
DEFAULT_BANDITS_DIR = Path("outputs/bench/bandits")
DEFAULT_SCALE_DIR = Path("outputs/bench/scale")


def _shared(parser: argparse.ArgumentParser, default_dir: Path) -> None:
    add_common_options(parser)
    parser.add_argument("--output-dir", type=Path, default=default_dir,
                        help=f"folder for data, models, metrics and the report (default: {default_dir})")
    parser.add_argument("--prepared", type=Path, default=None,
                        help="reuse this prepared-data folder instead of running data prep")
    parser.add_argument(
        "--pipeline-run", default=None, help="MLflow grouping tag (default: bench-<kind>-<time>)"
    )


def add_benchmark_commands(bench_commands: Any) -> None:
    """Register every offline benchmark on the ``bench`` group's subparsers, in the order ``--help`` lists."""
    add_quality_command(bench_commands)
    add_cold_start_command(bench_commands)
    add_bandits_command(bench_commands)
    add_scale_command(bench_commands)
    add_debian_dataset_command(bench_commands)


def add_quality_command(bench_commands: Any) -> None:
    """Register ``bench quality``."""
    quality = bench_commands.add_parser(
        "quality", help="train and evaluate every baseline and language model in one run (HTML report)")
    _shared(quality, DEFAULT_QUALITY_DIR)
    quality.add_argument("--with-encoders", action="store_true",
                         help="also train bi_encoder and cross_encoder (long on CPU)")
    quality.set_defaults(handler=_cmd_quality)


def add_cold_start_command(bench_commands: Any) -> None:
    """Register ``bench cold-start``."""
    cold = bench_commands.add_parser(
        "cold-start", help="hold out items' training events; evaluate the users whose test target is one")
    _shared(cold, DEFAULT_COLD_START_DIR)
    cold.add_argument("--fraction", type=float, default=0.1,
                      help="share of the items with a positive event held out (default: 0.1)")
    cold.add_argument("--seed", type=int, default=None, help="seed of the draw (default: the config's seed)")
    cold.set_defaults(handler=_cmd_cold_start)


def add_bandits_command(bench_commands: Any) -> None:
    """Register ``bench bandits``."""
    bandits = bench_commands.add_parser(
        "bandits", help="compare bandit policies on the ml-latest-small simulator; check IPS/SNIPS against it"
    )
    add_common_options(bandits)
    bandits.add_argument("--output-dir", type=Path, default=DEFAULT_BANDITS_DIR,
                         help=f"folder for the tables, log and report (default: {DEFAULT_BANDITS_DIR})")
    bandits.add_argument("--policies", nargs="+", default=None, metavar="POLICY",
                         help="policies besides greedy and random (default: all)")
    bandits.set_defaults(handler=_cmd_bandits)


def add_scale_command(bench_commands: Any) -> None:
    """Register ``bench scale``."""
    scale = bench_commands.add_parser(
        "scale", help="the quality run on SYNTHETIC data of 50k items / 1M interactions: time and peak RSS")
    _shared(scale, DEFAULT_SCALE_DIR)
    scale.add_argument("--items", type=int, default=50_000, help="catalogue size (default: 50000)")
    scale.add_argument("--interactions", type=int, default=1_000_000, help="events (default: 1000000)")
    scale.add_argument("--users", type=int, default=20_000, help="users (default: 20000)")
    scale.set_defaults(handler=_cmd_scale)


def add_debian_dataset_command(bench_commands: Any) -> None:
    """Register ``bench debian-dataset``."""
    debian = bench_commands.add_parser(
        "debian-dataset", help="build the Debian package-relations dataset (generic format) from apt's index")
    debian.add_argument("--packages", type=Path, default=None,
                        help="a Debian Packages index (default: bookworm main amd64 in /var/lib/apt/lists)")
    debian.add_argument(
        "--output-dir", type=Path, required=True, help="folder for interactions.csv, items.csv"
    )
    debian.add_argument("--log-level", default="INFO")
    debian.set_defaults(handler=_cmd_debian_dataset)


def _cmd_quality(args: argparse.Namespace) -> None:
    from hyperrec.benchmarks.quality import run_quality
    from hyperrec.benchmarks.report import REPORT_FILE, TABLE_FILE

    summary = run_quality(config_from_args(args), args.output_dir, with_encoders=args.with_encoders,
                          prepared=args.prepared, pipeline_run=args.pipeline_run)
    out = args.output_dir
    sys.stdout.write(
        (out / TABLE_FILE).read_text(encoding="utf-8")
        + f"\nwall {summary['benchmark']['wall_seconds']:.0f} s\n"
        f"table: {out / TABLE_FILE}\nreport: {out / REPORT_FILE}\nsummary: {out / 'summary.json'}\n"
    )


def _cmd_cold_start(args: argparse.Namespace) -> None:
    from hyperrec.benchmarks.cold_start import ColdStartSettings, run_cold_start
    from hyperrec.benchmarks.report import REPORT_FILE, TABLE_FILE
    from hyperrec.errors import ConfigError

    try:
        settings = ColdStartSettings(fraction=args.fraction, seed=args.seed)
    except ValueError as exc:
        raise ConfigError(f"invalid cold-start settings: {exc}") from None
    metrics = run_cold_start(
        config_from_args(args),
        args.output_dir,
        settings=settings,
        prepared=args.prepared,
        pipeline_run=args.pipeline_run,
    )
    out = args.output_dir
    sys.stdout.write((out / TABLE_FILE).read_text(encoding="utf-8")
                     + f"\nwall {metrics['cold_start']['wall_seconds']:.0f} s\n"
                     f"table: {out / TABLE_FILE}\nreport: {out / REPORT_FILE}\n")


def _cmd_bandits(args: argparse.Namespace) -> None:
    from hyperrec.benchmarks.bandits import OPE_FILE, POLICIES, REPORT_FILE, TABLE_FILE, run_bandit_bench
    from hyperrec.errors import ConfigError

    unknown = sorted(set(args.policies or ()) - set(POLICIES))
    if unknown:
        raise ConfigError(f"unknown policy {unknown}; known: {list(POLICIES)}")
    summary = run_bandit_bench(config_from_args(args), args.output_dir, args.policies or POLICIES)
    out = args.output_dir
    sys.stdout.write((out / TABLE_FILE).read_text(encoding="utf-8") + "\n"
                     + (out / OPE_FILE).read_text(encoding="utf-8")
                     + f"\nwall {summary['wall_seconds']:.0f} s\ntable: {out / TABLE_FILE}\n"
                     f"report: {out / REPORT_FILE}\n")


def _cmd_scale(args: argparse.Namespace) -> None:
    import json

    from hyperrec.benchmarks.scale import ScaleSettings, run_scale
    from hyperrec.errors import ConfigError

    try:
        settings = ScaleSettings(n_items=args.items, n_interactions=args.interactions, n_users=args.users)
    except ValueError as exc:
        raise ConfigError(f"invalid scale settings: {exc}") from None
    result = run_scale(config_from_args(args), args.output_dir, settings)
    sys.stdout.write(json.dumps(result, indent=1) + "\n")


def _cmd_debian_dataset(args: argparse.Namespace) -> None:
    import json

    from hyperrec.data.debian_packages import build_debian_dataset, default_packages_file

    summary = build_debian_dataset(args.packages or default_packages_file(), args.output_dir)
    sys.stdout.write(json.dumps(summary.to_dict(), indent=1) + "\n")
