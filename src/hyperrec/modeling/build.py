"""Language models by name, built from the config: what the fine_tune step trains."""

from __future__ import annotations

from collections.abc import Mapping

from hyperrec.errors import ModelError
from hyperrec.model_names import LANGUAGE_MODELS
from hyperrec.modeling.settings import ModelingConfig
from hyperrec.models.base import Recommender


def build_language_model(name: str, config: ModelingConfig, fitted: Mapping[str, Recommender]) -> Recommender:
    """An unfitted model; ``fitted`` holds the models trained before it (the cross-encoder reranks one).

    Args:
        name: a language model of ``LANGUAGE_MODELS``.
        config: the modeling section, whose settings the model takes.
        fitted: the models trained so far, by name.

    Returns:
        The model, not yet fitted.

    Raises:
        ModelError: the name is unknown, or the cross-encoder's retriever is not in ``fitted``.
    """
    from hyperrec.modeling.bi_encoder import BiEncoderRecommender
    from hyperrec.modeling.cross_encoder import CrossEncoderReranker
    from hyperrec.modeling.next_item import NextItemRecommender
    from hyperrec.modeling.zero_shot import ZeroShotRecommender

    if name == "next_item_lm":
        return NextItemRecommender.from_config(config)
    if name == "next_item_id":
        return NextItemRecommender.from_config(config, ablation=True)
    if name == "zero_shot_lm":
        return ZeroShotRecommender.from_config(config)
    if name == "bi_encoder":
        return BiEncoderRecommender.from_config(config)
    if name == "cross_encoder":
        retriever = fitted.get(config.cross_encoder_retriever)
        if retriever is None:
            raise ModelError(
                f"cross_encoder reranks {config.cross_encoder_retriever!r}, which must be trained before it "
                f"(list it earlier in modeling.train)"
            )
        return CrossEncoderReranker.from_config(config, retriever)
    raise ModelError(f"unknown language model {name!r}; known: {list(LANGUAGE_MODELS)}")
