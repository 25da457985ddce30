"""Options every ``hyperrec`` subcommand shares, so that all of them read the config the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

from hyperrec.config import HyperrecConfig, load_config


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``, repeatable ``--set section.key=value`` and ``--log-level``."""
    parser.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. --set prep.min_rating=4 (repeatable)",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")


def config_from_args(args: argparse.Namespace) -> HyperrecConfig:
    """The config named by ``add_common_options``' flags (env vars applied between file and flags)."""
    return load_config(args.config, overrides=args.overrides)
