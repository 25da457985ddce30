"""The retention window on the feedback log (data prep applies it to the prepared data itself)."""

from __future__ import annotations

import logging
from pathlib import Path

from hyperrec.config import HyperrecConfig
from hyperrec.data.privacy_filter import retention_cutoff
from hyperrec.errors import ConfigError
from hyperrec.privacy.rewrite import SEGMENT_GLOB, filter_lines, older_than

logger = logging.getLogger(__name__)


def expire_feedback(cfg: HyperrecConfig, feedback_dir: Path | None = None) -> dict[str, float | int]:
    """Rewrite the feedback segments without records older than ``privacy.retention_days``; an emptied
    segment is removed. Returns the cutoff and the number of records dropped."""
    cutoff = retention_cutoff(cfg)
    if cutoff is None:
        raise ConfigError("privacy.retention_days is not set: there is no retention window to apply")
    folder = Path(feedback_dir or cfg.serving.feedback_dir)
    dropped = 0
    segments = sorted(folder.glob(SEGMENT_GLOB)) if folder.is_dir() else []
    for path in segments:
        dropped += filter_lines(path, older_than(cutoff), lock=True)
    logger.info("retention: %d feedback records before %.0f dropped from %s", dropped, cutoff, folder)
    return {"cutoff_unix": cutoff, "records_dropped": dropped, "segments": len(segments)}
