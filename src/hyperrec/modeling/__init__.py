"""Language-model recommenders: item encoder, next-item model, bi-encoder, cross-encoder (see
docs/MODELING.md).

Public names are imported lazily (``from hyperrec.modeling import NextItemRecommender``) so that importing the
package, e.g. for ``ModelingConfig``, does not load torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

from hyperrec.model_names import LANGUAGE_MODEL_CLASSES

_EXPORTS = {
    "ModelingConfig": "settings",
    "FULL_PROFILE_OVERRIDES": "run_profiles",
    "apply_profile": "settings",
    "TextEncoder": "item_encoder",
    "embed_catalogue": "item_encoder",
    "item_texts": "item_encoder",
    "build_tiny_bert": "item_encoder",
    "EmbeddingCache": "embedding_cache",
    "NextItemRecommender": "next_item",
    "IDOnlyNextItemRecommender": "next_item",
    "ZeroShotRecommender": "zero_shot",
    "BiEncoderRecommender": "bi_encoder",
    "CrossEncoderReranker": "cross_encoder",
    "Trainer": "trainer",
    "TrainResult": "trainer",
    "default_validator": "validation",
    "local_validator": "validation",
}

__all__ = sorted(_EXPORTS) + ["model_classes"]


def model_classes() -> list[type]:
    """The Recommender classes of this package (imports torch)."""
    out = []
    for path in LANGUAGE_MODEL_CLASSES.values():
        module, _, name = path.partition(":")
        out.append(getattr(importlib.import_module(f"{__name__}.{module}"), name))
    return out


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
