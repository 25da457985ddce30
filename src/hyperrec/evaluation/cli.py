"""``hyperrec audit``: the fairness audit of an existing evaluation folder (docs/FAIRNESS.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options, config_from_args


def add_audit_command(subparsers: Any) -> None:
    """Register ``hyperrec audit`` on the top-level subparsers.

    Args:
        subparsers: the ``hyperrec`` parser's subparsers action.
    """
    audit = subparsers.add_parser(
        "audit", help="fairness audit of an evaluation folder: quality per user group, item exposure")
    add_common_options(audit)
    audit.add_argument("--evaluation", type=Path, required=True,
                       help="evaluation folder (metrics.json and <model>/recommendations.jsonl)")
    audit.add_argument("--prepared", type=Path, required=True, help="the prepared-data folder it evaluated")
    audit.add_argument("--output", type=Path, default=None,
                       help="folder for fairness.json/.md/.html (default: the evaluation folder)")
    audit.add_argument("--users", type=Path, default=None,
                       help="user attributes file (overrides fairness.users_path; docs/DATA.md)")
    audit.set_defaults(handler=_cmd_audit)


def _cmd_audit(args: argparse.Namespace) -> None:
    from hyperrec.evaluation.audit import run_audit
    from hyperrec.evaluation.fairness_report import audit_markdown

    cfg = config_from_args(args)
    if args.users is not None:
        cfg = cfg.model_copy(update={"fairness": cfg.fairness.model_copy(update={"users_path": args.users})})
    audit = run_audit(cfg, args.prepared, args.evaluation, args.output)
    out = args.output or args.evaluation
    sys.stdout.write(audit_markdown(audit) + f"\naudit: {out / 'fairness.json'}\n")
