"""Language-model recommenders: item encoder, next-item model, bi-encoder, cross-encoder (see docs/MODELING.md).

Public names are imported lazily (``from hyperrec.modeling import NextItemRecommender``) so that importing the
package, e.g. for ``ModelingConfig``, does not load torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelingConfig": "settings",
    "FULL_PROFILE_OVERRIDES": "settings",
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
    "Trainer": "finetune",
    "TrainResult": "finetune",
    "explain": "explain",
    "Explanation": "explain",
    "default_validator": "validation",
    "local_validator": "validation",
}

#: Every Recommender of this package, for ``hyperrec.models.registry.register_model``.
MODEL_CLASS_PATHS = {
    "next_item_lm": "next_item:NextItemRecommender",
    "next_item_id": "next_item:IDOnlyNextItemRecommender",
    "zero_shot_lm": "zero_shot:ZeroShotRecommender",
    "bi_encoder": "bi_encoder:BiEncoderRecommender",
    "cross_encoder": "cross_encoder:CrossEncoderReranker",
}

__all__ = sorted(_EXPORTS) + ["MODEL_CLASS_PATHS", "model_classes"]


def model_classes() -> list[type]:
    """The Recommender classes of this package (imports torch)."""
    out = []
    for path in MODEL_CLASS_PATHS.values():
        module, _, name = path.partition(":")
        out.append(getattr(importlib.import_module(f"{__name__}.{module}"), name))
    return out


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
