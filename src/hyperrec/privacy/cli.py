"""``hyperrec forget``, ``hyperrec consent`` and ``hyperrec retention`` (docs/PRIVACY.md).

Examples::

    hyperrec forget --user-id 42
    hyperrec forget --file erasure-requests.txt       # one raw user id per line; # comments
    hyperrec consent --user-id 42 --withdraw          # non-personalized answers, left out of training
    hyperrec retention --set privacy.retention_days=365
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options, config_from_args
from hyperrec.errors import DataError, HyperrecError


def add_privacy_commands(subparsers: Any) -> None:
    """Register ``forget``, ``consent`` and ``retention`` on the ``hyperrec`` subparsers."""
    forget = subparsers.add_parser(
        "forget", help="erase users from data, feedback, bandit state; taint models"
    )
    _add_users(forget)
    forget.add_argument("--scan", type=Path, action="append", default=[],
                        help="another folder to scrub and check (repeatable)")
    add_common_options(forget)
    forget.set_defaults(handler=_cmd_forget)

    consent = subparsers.add_parser("consent", help="record users' consent to personalization")
    _add_users(consent)
    choice = consent.add_mutually_exclusive_group(required=True)
    choice.add_argument("--withdraw", action="store_true", help="no personalization, no training on the user")
    choice.add_argument("--grant", action="store_true", help="personalization allowed again")
    add_common_options(consent)
    consent.set_defaults(handler=_cmd_consent)

    retention = subparsers.add_parser("retention", help="drop feedback-log records older than the window")
    retention.add_argument(
        "--feedback", type=Path, default=None, help="feedback folder (default: serving.feedback_dir)"
    )
    add_common_options(retention)
    retention.set_defaults(handler=_cmd_retention)


def _add_users(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", action="append", help="raw user id (repeatable)")
    who.add_argument("--file", type=Path, help="file with one raw user id per line")


def read_user_ids(args: argparse.Namespace) -> list[str]:
    """The raw ids of ``--user-id`` or ``--file`` (blank lines and ``#`` comments skipped)."""
    if args.user_id:
        return list(args.user_id)
    try:
        text = args.file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", file=str(args.file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the user-id file: {exc}", file=str(args.file)) from None
    ids = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise DataError("no user ids in the file", file=str(args.file))
    return ids


def _cmd_forget(args: argparse.Namespace) -> None:
    from hyperrec.privacy.erase import forget
    from hyperrec.privacy.taint import tainted_aliases

    cfg = config_from_args(args)
    report = forget(cfg, read_user_ids(args), extra_roots=args.scan)
    summary = {**report.as_dict(), "files_rewritten": len(report.files_rewritten),
               "rows_removed": sum(report.files_rewritten.values()),
               "aliases_on_tainted_versions": tainted_aliases(cfg.mlflow_uri())}
    sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if report.residue:
        raise HyperrecError(f"{len(report.residue)} file(s) still name a forgotten user (see 'residue')")


def _cmd_consent(args: argparse.Namespace) -> None:
    from hyperrec.data.ledger import ConsentLedger
    from hyperrec.privacy.erase import pseudonyms_of

    cfg = config_from_args(args)
    ledger = ConsentLedger.of(cfg)
    n = ledger.record(sorted(pseudonyms_of(cfg, read_user_ids(args))), consent=bool(args.grant))
    sys.stdout.write(f"consent {'granted' if args.grant else 'withdrawn'} for {n} user(s) in {ledger.path}\n")


def _cmd_retention(args: argparse.Namespace) -> None:
    from hyperrec.privacy.retention import expire_feedback

    summary = expire_feedback(config_from_args(args), args.feedback)
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
