"""The values of the ``full`` (GPU) run profile, and how a profile merges under the given settings.

The demo profile is the defaults of ``hyperrec.modeling.settings``; ``ModelingConfig`` fills whatever the user
did not set from ``FULL_PROFILE_OVERRIDES`` when ``runtime.profile`` is ``full``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: Values of the ``full`` (GPU) profile; merge with ``apply_profile(config, "full")``. Keep docs/MODELING.md
#: in sync.
FULL_PROFILE_OVERRIDES: dict[str, Any] = {
    "runtime": {"profile": "full", "device": "auto", "threads": None, "bf16_autocast": True},
    "item_encoder": {"max_length": 128, "batch_size": 512},
    "next_item": {
        "d_model": 128,
        "n_layers": 2,
        "n_heads": 4,
        "max_seq_len": 200,
        "dropout": 0.2,
        "finetune_item_encoder": True,
        "loss": "sampled_softmax",
        "n_sampled_negatives": 2048,
        "training": {
            "max_epochs": 200,
            "batch_size": 128,
            "learning_rate": 1e-3,
            "lm_learning_rate": 2e-5,
            "warmup_ratio": 0.05,
            "unfreeze_schedule": {0: 0, 5: 2, 10: 4},
            "patience": 10,
        },
    },
    "bi_encoder": {
        "profile_max_length": 256,
        "profile_max_items": 50,
        "item_max_length": 128,
        "examples_per_user": 32,
        "training": {
            "max_epochs": 10,
            "batch_size": 256,
            "lm_learning_rate": 2e-5,
            "unfreeze_schedule": {0: 2, 1: 4, 2: -1},
            "patience": 2,
        },
    },
    "cross_encoder": {
        "max_length": 384,
        "profile_max_items": 30,
        "candidates": 100,
        "negatives_per_positive": 7,
        "loss": "listwise",
        "examples_per_user": 16,
        "training": {
            "max_epochs": 5,
            "batch_size": 64,
            "lm_learning_rate": 2e-5,
            "unfreeze_schedule": {0: 2, 1: -1},
            "patience": 2,
        },
    },
}


def merge_profile(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, section by section (an unfreeze schedule is replaced whole)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and key != "unfreeze_schedule":
            merged[key] = merge_profile(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
