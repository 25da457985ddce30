"""The one list of model names: which language models exist, where their classes live, how they are saved.

Standard library only, so that ``hyperrec.models`` (the baselines' registry), ``hyperrec.modeling`` (the
language models) and the config can all read it without importing each other.
"""

from __future__ import annotations

from typing import Literal, get_args

#: The file every saved model folder holds; ``hyperrec.models.registry.load_model`` reads its "model" key.
MODEL_FILE = "model.json"

#: Names the ``modeling.train`` setting accepts, in training order (the reranker needs a fitted retriever).
LanguageModelName = Literal["next_item_lm", "next_item_id", "zero_shot_lm", "bi_encoder", "cross_encoder"]
LANGUAGE_MODELS: tuple[str, ...] = get_args(LanguageModelName)

#: ``module:Class`` under ``hyperrec.modeling`` of every language model, imported on first use (torch).
LANGUAGE_MODEL_CLASSES = {
    "next_item_lm": "next_item:NextItemRecommender",
    "next_item_id": "next_item:IDOnlyNextItemRecommender",
    "zero_shot_lm": "zero_shot:ZeroShotRecommender",
    "bi_encoder": "bi_encoder:BiEncoderRecommender",
    "cross_encoder": "cross_encoder:CrossEncoderReranker",
}

#: The next-item models: exported to serving, and warm-started from the champion's weights on retraining.
NEXT_ITEM_MODELS = ("next_item_lm", "next_item_id")
