"""Adapt the next-item training recipe to the shape of the data, before anything trains.

The defaults were made on MovieLens: ~10k items with timestamps. On a held-out book set (36k items, no
timestamps) the same defaults failed: a full softmax over 36k items fit 2 epochs into the budget, and without
timestamps the "sequence" the model learned was the catalogue order (prepared histories break time ties by
item_idx), while the held-out item was drawn at random. Two settings are therefore ``auto`` by default and
resolved here from the data's shape alone (never from a metric, so nothing is tuned on test):

- ``next_item.loss``: ``full_softmax`` up to ``full_softmax_max_items`` items, else ``sampled_softmax`` (the
  batch's targets act as in-batch negatives, plus ``n_sampled_negatives`` shared uniform ones);
- ``next_item.sequence_order``: ``shuffled`` when the split was a random leave-one-out (no timestamps), so
  each epoch sees every user's items in a fresh random order (an order-free objective), else ``as_given``.

``auto`` survives serialization (the pipeline passes the config as YAML), so the same config adapts on every
dataset; an explicit value is always kept. The model saves the resolved values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hyperrec.data.prepared import PreparedData
from hyperrec.data.split import RANDOM_LEAVE_ONE_OUT
from hyperrec.modeling.settings import NextItemSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataShape:
    """What the recipe looks at."""

    n_items: int
    n_train_events: int
    has_timestamps: bool

    @classmethod
    def of(cls, data: PreparedData) -> DataShape:
        """The shape of a prepared-data folder; timestamps from the data report's split method when there is
        one, else from whether the train events carry more than one distinct timestamp.

        Args:
            data: the prepared folder.

        Returns:
            Its catalogue size, train event count and whether its events are ordered in time.
        """
        train = data.split("train")
        method = data.split_method
        has_timestamps = method != RANDOM_LEAVE_ONE_OUT if method else bool(train["timestamp"].nunique() > 1)
        return cls(n_items=data.n_items, n_train_events=len(train), has_timestamps=has_timestamps)


def resolve_next_item(
    settings: NextItemSettings, shape: DataShape
) -> tuple[NextItemSettings, dict[str, str]]:
    """``settings`` with every ``auto`` value resolved for ``shape``; and each resolution with its reason.

    Args:
        settings: the next-item settings, possibly with ``auto`` values.
        shape: what the data looks like.

    Returns:
        The resolved settings (``settings`` itself when nothing is ``auto``), and each resolution's reason.
    """
    update: dict[str, str] = {}
    reasons: dict[str, str] = {}
    if settings.loss == "auto":
        too_big = shape.n_items > settings.full_softmax_max_items or (settings.finetune_item_encoder
                                                                   and not settings.token_cache)
        update["loss"] = "sampled_softmax" if too_big else "full_softmax"
        reasons["loss"] = (
            f"{update['loss']}: {shape.n_items} items, full_softmax_max_items "
            f"{settings.full_softmax_max_items}, finetune_item_encoder {settings.finetune_item_encoder}"
        )
    if settings.sequence_order == "auto":
        update["sequence_order"] = "as_given" if shape.has_timestamps else "shuffled"
        reasons["sequence_order"] = (f"{update['sequence_order']}: the data "
                                     f"{'has' if shape.has_timestamps else 'has no'} timestamps")
    for key, reason in reasons.items():
        log.info("recipe: next_item.%s = %s", key, reason)
    return (settings.model_copy(update=update) if update else settings), reasons
