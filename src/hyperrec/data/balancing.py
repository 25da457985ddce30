"""Optional training-data balancing: oversample the users of under-represented groups
(``fairness.balancing``).

Users are grouped by behavioural segment (``segments``) or by activity (``activity``: new / light / heavy by
train events, thresholds ``fairness.activity_*``). A user of a group of ``n`` users, where the largest group
has ``N``, appears ``min(max_copies, round((N / n) ** power))`` times: the copies are extra users named
``<user_id>~<copy>`` with the same train events, examples, profile and segment. Every model then sees the
smaller groups' behaviour as often as the largest group's, whatever its training loop: a sequence model gets
their sequences more often per epoch, a matrix model gets more rows with their co-occurrences.

Only the training tables are balanced; validation and test are untouched, so early stopping and evaluation
measure the real users. Off by default; measured effect in docs/BENCHMARKS.md, "Fairness audit".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from hyperrec.data.activity import activity_labels
from hyperrec.data.prepared import EXAMPLES_FILE, PROFILES_FILE, SEGMENTS_FILE, PreparedData
from hyperrec.fairness_settings import FairnessConfig

logger = logging.getLogger(__name__)

#: Tables keyed by user that a model trains on; validation/test stay as they are.
BALANCED_FILES = ("train.parquet", EXAMPLES_FILE, PROFILES_FILE, SEGMENTS_FILE)
COPY_SEPARATOR = "~"


@dataclass(frozen=True)
class BalancedData(PreparedData):
    """A prepared-data folder whose training tables repeat some users under copy ids."""

    copies: Mapping[str, int] = field(default_factory=dict)

    def _read(self, name: str) -> pd.DataFrame:
        frame = super()._read(name)
        return oversample(frame, self.copies) if name in BALANCED_FILES else frame


def oversample(frame: pd.DataFrame, copies: Mapping[str, int]) -> pd.DataFrame:
    """``frame`` plus, for each user with ``copies[user] = c > 1``, c - 1 copies of its rows under new ids."""
    users = frame["user_id"].astype(str)
    extra = []
    for copy in range(1, max(copies.values(), default=1)):
        chosen = [user for user, count in copies.items() if count > copy]
        rows = frame[users.isin(chosen).to_numpy()].copy()
        rows["user_id"] = rows["user_id"].astype(str) + f"{COPY_SEPARATOR}{copy}"
        extra.append(rows)
    return pd.concat([frame, *extra], ignore_index=True) if extra else frame


def group_copies(labels: pd.Series, power: float, max_copies: int) -> dict[str, int]:
    """user -> copies (>= 1) so that each group's weight approaches the largest group's."""
    sizes = labels.value_counts()
    largest = int(sizes.max())
    per_group = {label: int(min(max_copies, max(1, round((largest / size) ** power))))
                 for label, size in sizes.items()}
    return {str(user): per_group[label] for user, label in labels.items()}


def balancing_labels(data: PreparedData, cfg: FairnessConfig) -> pd.Series:
    """The train users' group labels for ``cfg.balancing`` (segments or activity)."""
    train = data.split("train")
    sizes = train.groupby(train["user_id"].astype(str)).size()
    if cfg.balancing == "segments":
        segments = data.segments
        labels = pd.Series(segments["segment"].to_numpy(), index=segments["user_id"].astype(str))
        return labels.reindex(sizes.index).dropna()
    return activity_labels(sizes, cfg)


def balanced_training_data(data: PreparedData, cfg: FairnessConfig) -> PreparedData:
    """``data`` itself when balancing is off, else a BalancedData view of the same folder."""
    if cfg.balancing == "none":
        return data
    labels = balancing_labels(data, cfg)
    copies = group_copies(labels, cfg.balancing_power, cfg.balancing_max_copies)
    added = sum(count - 1 for count in copies.values())
    logger.info("balancing by %s: %d users, %d copies added (groups %s)", cfg.balancing, len(copies), added,
                dict(labels.value_counts().sort_index()))
    return BalancedData(data.root, copies={user: count for user, count in copies.items() if count > 1})
