"""``export_feedback``: the feedback log as training interactions (and, for bandit answers, an OPE log).

The output is the generic interactions format (``hyperrec.online.feedback_join``), so a retraining run takes
it as its new window with ``data.format=generic``, ``data.interactions_path=<output>`` and the served
catalogue as ``data.items_path``; the retraining pipeline's ``current_uri`` (the drift check's current window)
can point at the same file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hyperrec.errors import DataError
from hyperrec.online.bandits.ope import write_log
from hyperrec.online.feedback import read_feedback
from hyperrec.online.feedback_join import join_feedback, ope_requests, training_interactions

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".parquet", ".jsonl")


def export_feedback(
    feedback_dir: Path,
    output: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    ope_log: Path | None = None,
) -> dict[str, Any]:
    """Join the log's served slates with its clicks and write ``output`` (.csv, .parquet or .jsonl).

    ``since`` / ``until`` (Unix seconds) keep the records of one window. Raises DataError for a corrupt log
    line (file and line named) or an unknown output suffix. Returns the counts written.
    """
    feedback_dir, output = Path(feedback_dir), Path(output)
    if output.suffix not in SUFFIXES:
        raise DataError(f"{output}: the output must end in one of {', '.join(SUFFIXES)}")
    if not feedback_dir.is_dir():
        raise DataError(f"{feedback_dir}: no feedback folder there")
    read = read_feedback(feedback_dir)
    if read.corrupt:
        bad = read.corrupt[0]
        raise DataError(f"{feedback_dir / bad.file} line {bad.line}: {bad.reason}")
    for torn in read.torn:
        logger.warning("%s line %d skipped: %s", torn.file, torn.line, torn.reason)
    records = [r for r in read.records if _in_window(r, since, until)]
    joined = join_feedback(records)
    frame = training_interactions(joined)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        frame.to_csv(output, index=False)
    elif output.suffix == ".parquet":
        frame.to_parquet(output, index=False)
    else:
        frame.to_json(output, orient="records", lines=True)
    summary: dict[str, Any] = {
        **joined.summary(),
        "rows": len(frame),
        "positives": int((frame["event"] != "view").sum()),
        "output": str(output),
    }
    if ope_log is not None:
        summary["ope_requests"] = write_log(ope_log, ope_requests(joined))
        summary["ope_log"] = str(ope_log)
    logger.info(
        "exported %d interactions (%d clicked of %d shown) from %s to %s",
        len(frame),
        summary["clicked"],
        summary["shown"],
        feedback_dir,
        output,
    )
    return summary


def _in_window(record: dict[str, Any], since: float | None, until: float | None) -> bool:
    ts = float(record.get("ts", 0.0))
    return (since is None or ts >= since) and (until is None or ts < until)
