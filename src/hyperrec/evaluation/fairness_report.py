"""The fairness audit as tables: Markdown for metrics.md and the docs, an HTML section for the reports.

``audit_tables(audit, tablefmt)`` renders a fairness.json dict (``hyperrec.evaluation.fairness``) as titled
tables; ``audit_markdown`` and ``audit_html_section`` join them. ``write_audit`` writes all three files.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path

from tabulate import tabulate

from hyperrec.evaluation.fairness import ACTIVITY_GROUPS, AUDIT_HTML, AUDIT_JSON, AUDIT_MD


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _attribute_columns(audit: Mapping) -> list[str]:
    return sorted({family for entry in audit["models"].values() for family in entry["groups"]
                   if family.startswith("attribute:")})


def summary_rows(audit: Mapping) -> tuple[list[str], list[list[str]]]:
    """One row per model: overall quality, the disparity ratios and the exposure figures.

    Args:
        audit: a fairness.json dict.

    Returns:
        The headers and one row of formatted cells per model.
    """
    k, attributes = audit["k"], _attribute_columns(audit)
    headers = ["model", f"NDCG@{k}", "segment NDCG ratio (worst/best)", "activity NDCG ratio",
               *(f"{name.split(':', 1)[1]} HR ratio (DI)" for name in attributes),
               *(f"{name.split(':', 1)[1]} exposure TV" for name in attributes),
               "exposure Gini", f"coverage@{k}", "long-tail share"]
    rows = []
    for model, entry in audit["models"].items():
        groups, exposure = entry["groups"], entry["exposure"]
        overall = _overall_ndcg(groups["activity"]["groups"])
        rows.append([
            model, _number(overall, 4),
            _ratio_cell(groups["segment"]), _ratio_cell(groups["activity"]),
            *(_number(groups[name]["hr_ratio"]) for name in attributes),
            *(_number(entry["parity"][name.split(":", 1)[1]]["max_tv_distance"]) for name in attributes),
            _number(exposure["gini"]), _number(exposure["coverage"]), _number(exposure["long_tail_share"]),
        ])
    return headers, rows


def _overall_ndcg(groups: Mapping[str, Mapping]) -> float | None:
    """The mean over every user, from the activity groups (they partition the evaluated users)."""
    users = sum(group["n_users"] for group in groups.values())
    return sum(group["ndcg"] * group["n_users"] for group in groups.values()) / users if users else None


def _ratio_cell(family: Mapping) -> str:
    if family["ndcg_ratio"] is None:
        return "–"
    return f"{family['ndcg_ratio']:.3f} ({family['worst']} / {family['best']})"


def group_rows(audit: Mapping, family: str) -> tuple[list[str], list[list[str]]]:
    """Per model, each group's NDCG@K ± SE (n users); a group below min_group_users is marked *.

    Args:
        audit: a fairness.json dict.
        family: the group family: "segment", "activity" or ``attribute:<name>``.

    Returns:
        The headers (model, then the group labels) and one row of formatted cells per model.
    """
    found = {label for entry in audit["models"].values() for label in entry["groups"][family]["groups"]}
    if family == "activity":
        labels = [label for label in ACTIVITY_GROUPS if label in found]
    else:  # segments are numbers: 2 before 10
        labels = sorted(found, key=lambda label: (len(label), label) if label.isdigit() else (0, label))
    headers = ["model", *labels]
    rows = []
    for model, entry in audit["models"].items():
        groups = entry["groups"][family]["groups"]
        rows.append([model, *(_group_cell(groups[label]) if label in groups else "–" for label in labels)])
    return headers, rows


def _group_cell(group: Mapping) -> str:
    star = "" if group["included"] else "*"
    return f"{group['ndcg']:.4f} ±{group['ndcg_se']:.4f} (n={group['n_users']}{star})"


def exposure_rows(audit: Mapping) -> tuple[list[str], list[list[str]]]:
    """Per popularity bin (1: most popular): items, interaction share and every model's exposure share."""
    models = list(audit["models"])
    first = audit["models"][models[0]]["exposure"]["bins"]
    headers = ["popularity bin", "items", "interaction share", *models]
    rows = [
        [
            str(entry["bin"]),
            str(entry["items"]),
            _number(entry["interaction_share"]),
            *(
                _number(audit["models"][model]["exposure"]["bins"][index]["exposure_share"])
                for model in models
            ),
        ]
        for index, entry in enumerate(first)
    ]
    return headers, rows


def audit_tables(audit: Mapping, tablefmt: str = "github") -> list[tuple[str, str]]:
    """(title, table) pairs: the summary, one table per user family, the exposure by popularity bin.

    Args:
        audit: a fairness.json dict.
        tablefmt: the ``tabulate`` format, e.g. "github" or "html".

    Returns:
        The titled tables, in report order.
    """
    def render(headers_rows: tuple[list[str], list[list[str]]]) -> str:
        headers, rows = headers_rows
        return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)

    k = audit["k"]
    families = ["segment", "activity", *_attribute_columns(audit)]
    tables = [
        (
            f"Fairness summary ({audit['split']} split, top {k}, groups of >= {audit['min_group_users']} "
            f"users in the ratios; interaction Gini {audit['interaction_gini']:.3f})",
            render(summary_rows(audit)),
        )
    ]
    tables += [(f"NDCG@{k} per {family} group (± per-user SE; * below min_group_users, not in the ratio)",
                render(group_rows(audit, family))) for family in families]
    tables.append((f"Exposure share of the top-{k} slots per item-popularity bin",
                   render(exposure_rows(audit))))
    return tables


def audit_markdown(audit: Mapping) -> str:
    return "\n\n".join(f"### {title}\n\n{table}" for title, table in audit_tables(audit, "github")) + "\n"


def audit_html_section(audit: Mapping) -> str:
    """A <section> to embed in a report page (tables in HTML, titles escaped)."""
    body = "\n".join(
        f"<h3>{html.escape(title)}</h3>\n{table}" for title, table in audit_tables(audit, "html")
    )
    return f'<section id="fairness-audit">\n<h2>Fairness audit</h2>\n{body}\n</section>\n'


def write_audit(audit: Mapping, out_dir: Path) -> dict[str, Path]:
    """fairness.json, fairness.md and fairness.html (a page holding the section) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / AUDIT_JSON, "md": out_dir / AUDIT_MD, "html": out_dir / AUDIT_HTML}
    paths["json"].write_text(json.dumps(audit, indent=2), encoding="utf-8")
    paths["md"].write_text(audit_markdown(audit), encoding="utf-8")
    paths["html"].write_text(html_page("Fairness audit", audit_html_section(audit)), encoding="utf-8")
    return paths


def html_page(title: str, *sections: str) -> str:
    """A self-contained page around report sections."""
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{''.join(sections)}</body></html>\n"
    )
