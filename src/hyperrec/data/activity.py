"""Activity groups of users: new, light or heavy by their number of train events (``fairness.activity_*``).

The fairness audit reports quality per group and the training-data balancing can oversample the small ones;
both read the groups from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hyperrec.fairness_settings import FairnessConfig


def activity_labels(history_sizes: pd.Series, cfg: FairnessConfig) -> pd.Series:
    """new (< activity_new_below events), heavy (>= activity_heavy_from), light in between."""
    labels = np.where(history_sizes < cfg.activity_new_below, "new",
                      np.where(history_sizes >= cfg.activity_heavy_from, "heavy", "light"))
    return pd.Series(labels, index=history_sizes.index, dtype=object)
