"""``hyperrec feedback export``: served slates joined with clicks → training interactions (and an OPE log).

Example::

    hyperrec feedback export --feedback outputs/feedback --output outputs/feedback/interactions.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options


def add_feedback_commands(subparsers: Any) -> None:
    """Register ``feedback export`` on the ``hyperrec`` subparsers."""
    feedback = subparsers.add_parser("feedback", help="the feedback log: export it as training data")
    commands = feedback.add_subparsers(dest="feedback_command", required=True)
    export = commands.add_parser("export", help="join served slates with clicks into generic interactions")
    export.add_argument("--feedback", type=Path, default=None,
                        help="feedback log folder (default: serving.feedback_dir)")
    export.add_argument(
        "--output", type=Path, required=True, help="interactions file (.csv, .parquet, .jsonl)"
    )
    export.add_argument("--since", type=float, default=None, help="only records at or after this Unix time")
    export.add_argument("--until", type=float, default=None, help="only records before this Unix time")
    export.add_argument("--ope-log", type=Path, default=None,
                        help="also write the bandit answers as an off-policy evaluation log (JSONL)")
    add_common_options(export)
    export.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> None:
    from hyperrec.cli_options import config_from_args
    from hyperrec.online.feedback_export import export_feedback

    folder = args.feedback or config_from_args(args).serving.feedback_dir
    summary = export_feedback(folder, args.output, since=args.since, until=args.until, ope_log=args.ope_log)
    sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
