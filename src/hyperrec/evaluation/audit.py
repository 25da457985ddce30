"""``run_audit``: the fairness audit of an evaluation folder, as the evaluate step and ``hyperrec audit`` run
it.

Loads the optional user attributes (``fairness.users_path``), audits every model of the folder
(``hyperrec.evaluation.fairness``) and writes fairness.json, fairness.md and fairness.html.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Protocol

from hyperrec.data.prepared import PreparedData
from hyperrec.evaluation.fairness import audit_evaluation
from hyperrec.evaluation.fairness_report import write_audit
from hyperrec.fairness_settings import FairnessConfig

logger = logging.getLogger(__name__)

#: The evaluate step's page: the metrics table and the fairness section.
REPORT_HTML = "report.html"
_MLFLOW_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")


class AuditSettings(Protocol):
    """What the audit reads of ``HyperrecConfig`` (a protocol, because ``hyperrec.config`` imports this
    package's settings): the fairness section, and the privacy section that pseudonymizes the user
    attributes."""

    fairness: FairnessConfig
    privacy: Any


def run_audit(cfg: AuditSettings, prepared_dir: Path, evaluation_dir: Path,
              out_dir: Path | None = None) -> dict:
    """Audit ``evaluation_dir`` against ``prepared_dir``; write the three files into ``out_dir`` (default:
    the evaluation folder, where the gate looks for fairness.json)."""
    attributes = None
    if cfg.fairness.users_path is not None:
        from hyperrec.data.user_attributes import load_user_attributes

        attributes = load_user_attributes(cfg.fairness.users_path, cfg.fairness.attributes, cfg.privacy)
    audit = audit_evaluation(PreparedData(Path(prepared_dir)), Path(evaluation_dir), cfg.fairness, attributes)
    paths = write_audit(audit, Path(out_dir) if out_dir is not None else Path(evaluation_dir))
    logger.info("fairness audit of %d model(s): %s", len(audit["models"]), paths["md"])
    return audit


def audit_after_evaluation(cfg: AuditSettings, prepared_dir: Path, evaluation_dir: Path,
                           metrics: dict) -> dict[str, float]:
    """The evaluate step's audit: the three files plus report.html (metrics table and the audit section).

    Returns the numbers MLflow records per model: ``fairness.<model>.<figure>`` for the segment and activity
    NDCG ratios, each attribute's HR ratio, the exposure Gini, coverage and long-tail share.
    """
    from hyperrec.evaluation.fairness_report import audit_html_section, html_page
    from hyperrec.evaluation.tables import metrics_table

    audit = run_audit(cfg, prepared_dir, evaluation_dir)
    page = html_page("Evaluation", "<h2>Metrics</h2>\n" + metrics_table(metrics, tablefmt="html"),
                     audit_html_section(audit))
    (Path(evaluation_dir) / REPORT_HTML).write_text(page, encoding="utf-8")
    return audit_numbers(audit)


def audit_numbers(audit: dict) -> dict[str, float]:
    """Flat ``fairness.<model>.<figure>`` numbers of an audit (ratios that are undefined are left out)."""
    numbers: dict[str, float] = {}
    for model, entry in audit["models"].items():
        for family, disparity in entry["groups"].items():
            key = "hr_ratio" if family.startswith("attribute:") else "ndcg_ratio"
            if disparity[key] is not None:
                numbers[f"fairness.{model}.{family.replace(':', '.')}.{key}"] = disparity[key]
        for figure in ("gini", "coverage", "long_tail_share"):
            numbers[f"fairness.{model}.exposure.{figure}"] = entry["exposure"][figure]
    # MLflow accepts letters, digits, _ - . / and space in a metric name; attribute columns may hold more
    return {_MLFLOW_UNSAFE.sub("_", name): value for name, value in numbers.items()}
