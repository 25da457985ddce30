"""Who ran what: audit entries for CLI commands and pipeline steps.

An entry names the operating-system user (``getpass.getuser``: LOGNAME, USER, ... then the password
database), the command or step, its arguments with secrets and raw user ids redacted, the pipeline run and
the time. Entries are appended to ``<privacy.state_dir>/audit.jsonl`` (append-only, hyperrec.data.ledger)
and, for steps, set as tags on the step's MLflow run and logged as its ``audit/entry.json`` artifact.
"""

from __future__ import annotations

import getpass
import logging
import re
import socket
import time
from collections.abc import Sequence
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.data.ledger import AUDIT_LOG, append_jsonl, state_dir

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"
#: Options whose value is never written: secrets, and raw user ids (the audit log must not re-identify).
_SECRET_NAME = re.compile(r"token|secret|password|passwd|key|credential|user[-_]id", re.IGNORECASE)
#: CLI commands that change state (data, models, registry, the ledgers): the ones audited.
AUDITED_COMMANDS = frozenset(
    {
        "data-prep",
        "train-baselines",
        "fine-tune",
        "export",
        "evaluate",
        "pipeline run",
        "demo",
        "forget",
        "consent",
        "retention",
    }
)
AUDIT_TAG_PREFIX = "hyperrec.audit."


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


def redact(args: Sequence[str]) -> list[str]:
    """``args`` with the value of every secret-looking option (``--token X``, ``--user-id=X``,
    ``--set privacy.erasure_token=X``) replaced by ``<redacted>``."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, sep, value = arg.partition("=")
        if arg.startswith("-") and _SECRET_NAME.search(name):
            out.append(f"{name}={REDACTED}" if sep else arg)
            hide_next = not sep
        elif sep and not arg.startswith("-") and _SECRET_NAME.search(name):  # a --set key=value item
            out.append(f"{name}={REDACTED}")
        else:
            out.append(arg)
    return out


def entry(kind: str, command: str, args: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "user": who(), "host": socket.gethostname(), "command": command,
            "args": redact(args), "at": time.time(), **extra}


def record(cfg: HyperrecConfig, record_: dict[str, Any]) -> None:
    """Append one entry to the local audit log (when ``privacy.audit``)."""
    if cfg.privacy.audit:
        append_jsonl(state_dir(cfg) / AUDIT_LOG, [record_])


def record_step(cfg: HyperrecConfig, step: str, pipeline_run: str) -> None:
    """Audit a pipeline step inside its active MLflow run: local entry, run tags and an artifact."""
    if not cfg.privacy.audit:
        return
    import mlflow

    item = entry("step", step, pipeline_run=pipeline_run)
    record(cfg, item)
    mlflow.set_tags({f"{AUDIT_TAG_PREFIX}user": item["user"], f"{AUDIT_TAG_PREFIX}host": item["host"],
                     f"{AUDIT_TAG_PREFIX}command": step})
    mlflow.log_dict(item, "audit/entry.json")


def command_name(args: Any) -> str:
    """``pipeline run`` for nested subcommands, ``forget`` for plain ones."""
    sub = next((getattr(args, k) for k in vars(args) if k.endswith("_command") and getattr(args, k)), None)
    return f"{args.command} {sub}" if sub else str(args.command)


def record_cli(args: Any, argv: Sequence[str]) -> None:
    """Audit a state-changing CLI command (``AUDITED_COMMANDS``) before it runs."""
    name = command_name(args)
    if name not in AUDITED_COMMANDS or not hasattr(args, "overrides"):
        return
    from hyperrec.cli_options import config_from_args

    record(config_from_args(args), entry("cli", name, argv))
