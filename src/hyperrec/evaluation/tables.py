"""A models x metrics table of metrics.json, both protocols side by side, for the demo and reports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tabulate import tabulate

from hyperrec.evaluation.harness import PROTOCOLS


def headline_keys(k_values: Sequence[int]) -> list[str]:
    """The metrics the dataset README reports: HR, NDCG, MAP at the smallest K, Recall at the largest, MRR,
    and AUC (sampled protocol only)."""
    low, high = min(k_values), max(k_values)
    return [f"hr@{low}", f"ndcg@{low}", f"map@{low}", f"recall@{high}", "mrr", "auc"]


def _cell(values: Mapping[str, float], key: str, digits: int) -> str:
    """The mean, with ``±`` its per-user standard error when metrics.json has one."""
    if key not in values:
        return "–"
    error = values.get(f"{key}_se")
    return f"{values[key]:.{digits}f}" + (f" ±{error:.{digits}f}" if error is not None else "")


def metrics_table(metrics: Mapping, *, keys: Sequence[str] | None = None, tablefmt: str = "github",
                  digits: int = 4) -> str:
    """Render ``metrics`` (the dict ``evaluate`` returns or metrics.json holds) with one row per model.

    Columns are ``<protocol> <key>`` for each key (default: ``headline_keys``) that some model reports
    under that protocol, then every ``coverage@K`` and the number of users. A caption line states the split
    and protocol, since a number without its protocol misleads.

    Args:
        metrics: the metrics dict.
        keys: the metric keys to show; None for ``headline_keys`` of the protocol's K values.
        tablefmt: the ``tabulate`` format, e.g. "github" or "html".
        digits: the decimals shown.

    Returns:
        The caption line, a blank line, then the table.
    """
    models = metrics["models"]
    protocol = metrics["protocol"]
    wanted = list(keys) if keys is not None else headline_keys(protocol["k_values"])
    columns = [(p, key) for p in PROTOCOLS for key in wanted
               if any(key in entry.get(p, {}) for entry in models.values())]
    coverage = sorted({key for entry in models.values() for key in entry if key.startswith("coverage@")},
                      key=lambda key: int(key.split("@")[1]))
    headers = ["model", *(f"{p} {key}" for p, key in columns), *coverage, "users"]
    rows = [
        [name, *(_cell(entry.get(p, {}), key, digits) for p, key in columns),
         *(f"{entry[key]:.{digits}f}" if key in entry else "–" for key in coverage),
         entry.get("n_users", "–")]
        for name, entry in models.items()
    ]
    caption = (f"{metrics['split']} split: full ranking over all items but the user's "
               f"{'+'.join(protocol['masked_splits'])} items; sampled ranking against "
               f"{protocol['sampled_negatives']} uniform negatives; ±: per-user standard error")
    return caption + "\n\n" + tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def metrics_table_from_file(path: Path, **options: object) -> str:
    """``metrics_table`` of a metrics.json file."""
    return metrics_table(json.loads(Path(path).read_text(encoding="utf-8")), **options)
