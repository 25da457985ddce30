"""Logging set-up shared by the CLI, pipeline steps and servers.

Library modules only create loggers; this is the one place that decides format and level. Messages must
never contain user data (ids, free text, keys): log counts, paths and timings instead.
"""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("urllib3", "alembic", "mlflow.store", "httpx", "filelock", "matplotlib")


class CurrentStderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of each record.

    ``logging.StreamHandler()`` keeps the stream it was created with; when the CLI runs in-process (tests,
    notebooks) that stream may be a capture that is closed later, and every later record then fails with
    "I/O operation on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - the type of sys.stderr
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_logging(level: str | int | None = None) -> None:
    """Configure the root logger once; ``HYPERREC_LOG_LEVEL`` overrides the default INFO."""
    resolved = level or os.environ.get("HYPERREC_LOG_LEVEL", "INFO")
    logging.basicConfig(level=resolved, format=FORMAT, force=True, handlers=[CurrentStderrHandler()])
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
