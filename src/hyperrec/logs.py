"""Logging set-up shared by the CLI, pipeline steps and servers.

Library modules only create loggers; this is the one place that decides format and level. Messages must
never contain user data (ids, free text, keys): log counts, paths and timings instead.
"""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("urllib3", "alembic", "mlflow.store", "httpx", "filelock", "matplotlib")


def configure_logging(level: str | int | None = None) -> None:
    """Configure the root logger once; ``HYPERREC_LOG_LEVEL`` overrides the default INFO."""
    resolved = level or os.environ.get("HYPERREC_LOG_LEVEL", "INFO")
    logging.basicConfig(level=resolved, format=FORMAT, force=True)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
