"""Typed settings of the modelling library, the ``HyperrecConfig.modeling`` section.

Defaults are the CPU **demo** profile (2 cores, a few minutes per model). ``FULL_PROFILE_OVERRIDES`` holds the
values of the **full** (GPU) profile as a nested dict; ``apply_profile`` merges it into a config. This module
must not import ``hyperrec.config`` (the dependency goes the other way).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from hyperrec.model_names import LanguageModelName
from hyperrec.modeling.cold_items import ColdSlotSettings
from hyperrec.modeling.run_profiles import FULL_PROFILE_OVERRIDES, merge_profile
from hyperrec.modeling.training_settings import (
    BI_ENCODER_TRAINING,
    CROSS_ENCODER_TRAINING,
    NEXT_ITEM_TRAINING,
    TrainingSettings,
    merged_training,
)
from hyperrec.settings_base import Section as _Section


class RuntimeSettings(_Section):
    """Where and how training and inference run."""

    profile: Literal["demo", "full"] = Field(
        "demo", description="demo: CPU defaults (this file); full: GPU values of FULL_PROFILE_OVERRIDES."
    )
    seed: int = Field(42,
                      description="Seed of torch, numpy and Python's random for every model (default: seed).")
    threads: int | None = Field(
        2, ge=1,
        description="torch.set_num_threads for training and inference; None leaves torch's default (default: "
                    "threads).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when available, else CPU."
    )
    bf16_autocast: bool = Field(
        True, description="Run forward passes under bfloat16 autocast on CUDA (never on CPU)."
    )
    progress: bool = Field(True, description="Show tqdm progress bars.")

    @field_validator("threads", mode="before")
    @classmethod
    def _zero_means_default(cls, value: Any) -> Any:
        return None if value == 0 else value


class ItemEncoderSettings(_Section):
    """The language model that turns item text into vectors (mean pooling + L2 norm)."""

    model_path: Path | None = Field(
        None,
        description="Local folder of a Hugging Face BERT-like model; None: the packaged all-MiniLM-L6-v2. "
        "Never downloaded from the hub.",
    )
    max_length: int = Field(
        64, ge=8, le=512, description="Token budget of one item text (64 covers every MovieLens item).",
    )
    batch_size: int = Field(128, ge=1, description="Texts per forward pass when embedding the catalogue.")
    max_tags: int = Field(10, ge=0, description="Most frequent tags kept in the item text.")
    include_categories: bool = Field(True, description="Put the genres/categories into the item text.")
    cache_dir: Path | None = Field(
        Path("~/.cache/hyperrec/embeddings"),
        validate_default=True,
        description="On-disk cache of catalogue embeddings (key: model path + max length + SHA of the "
        "texts); None disables it.",
    )

    @field_validator("cache_dir", "model_path")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None


class NextItemSettings(_Section):
    """The default ranker: a causal transformer over the user's item sequence, logits over the catalogue."""

    use_text: bool = Field(
        True, description="Item vectors from the LM text embeddings (projected); False: the ID-only ablation."
    )
    use_id_embedding: bool = Field(True, description="Add a learned per-item ID embedding.")
    use_segment: bool = Field(False, description="Condition the sequence on the user's segment embedding.")
    history_penalty: Literal["auto", "learned", "exclude", "off"] = Field(
        "auto",
        description="Items already in the history read: learned = one trained score offset; exclude = scored "
        "far below every other item (finite); auto = exclude when under 1% of train events repeat an earlier "
        "item of the same user (as in MovieLens), else learned; off = nothing.",
    )
    unseen_items_from_text: bool = Field(
        True,
        description="Items without a train event are never negatives and keep a zero ID embedding and bias, "
        "so they are scored from their text alone (cold start) instead of being learned as 'never clicked'.",
    )
    id_dropout: float = Field(
        0.0, ge=0, lt=1,
        description="Share of the items that, at each training step, lose their ID embedding and item bias "
        "and are scored like items without train events (text projection + one shared learned bias): "
        "text-only scores then live on the scale of learned-ID scores, so cold items reach the full ranking.",
    )
    text_id_alignment: float = Field(
        0.1, ge=0,
        description="Weight of the contrastive alignment of the text projection with the ID embeddings "
        "(hyperrec.modeling.text_alignment), added to the next-item loss; 0: off. Models without text or "
        "without ID embeddings ignore it. On ml-latest-small, mean best validation NDCG@10 over three seeds "
        "0.0717 against 0.0686 without it (docs/BENCHMARKS.md).",
    )
    alignment_temperature: float = Field(
        0.1, gt=0, description="Temperature of the text-ID alignment's InfoNCE (cosine similarities / it)."
    )
    alignment_items: int = Field(
        512, ge=2, description="Most of a batch's target items in the text-ID alignment (quadratic cost)."
    )
    cold_slot: ColdSlotSettings = Field(
        default_factory=ColdSlotSettings,
        description="The best item without training history may take one reserved rank, calibrated on "
        "validation (hyperrec.modeling.cold_items); the evaluation and serving both apply it.",
    )
    finetune_item_encoder: bool = Field(
        False,
        description="Train the LM item encoder with the recommender, following training.unfreeze_schedule "
        "(with token_cache: only the top layers run while training; without: end-to-end, sampled_softmax "
        "only). False: frozen, cached text embeddings.",
    )
    token_cache: bool = Field(
        True,
        description="With finetune_item_encoder: the frozen lower layers' token states are computed once per "
        "item and only the top layers the unfreeze schedule trains run while training "
        "(hyperrec.modeling.token_cache); False: the whole encoder runs on each batch's item texts "
        "(sampled_softmax only).",
    )
    live_items_per_step: int = Field(
        512, ge=1,
        description="Token cache with a full softmax: batch target items re-encoded with gradients at each "
        "step; the other items use their last refreshed vectors (the whole table is refreshed before each "
        "validation).",
    )
    d_model: int = Field(64, ge=8, description="Width of the transformer.")
    n_layers: int = Field(2, ge=1, description="Transformer blocks.")
    n_heads: int = Field(2, ge=1, description="Attention heads.")
    ffn_multiplier: int = Field(2, ge=1, description="Feed-forward width = ffn_multiplier * d_model.")
    max_seq_len: int = Field(100, ge=2, description="Most recent items the model reads.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout on embeddings, attention and feed-forward.")
    loss: Literal["auto", "full_softmax", "sampled_softmax"] = Field(
        "auto",
        description="Cross-entropy over the whole catalogue, or over the batch's targets (in-batch "
        "negatives) plus shared uniform negatives; auto: full_softmax up to full_softmax_max_items items, "
        "else sampled_softmax (see hyperrec.modeling.recipe).",
    )
    full_softmax_max_items: int = Field(
        20_000, ge=1,
        description="loss=auto: largest catalogue trained with a full softmax, which scores every item for "
        "every predicted position (on a held-out 36k-item book set only 2 epochs fit in 240 s).",
    )
    n_sampled_negatives: int = Field(
        512, ge=1, description="sampled_softmax: uniform negatives shared by the batch."
    )
    sampled_logq_correction: bool = Field(
        True,
        description="sampled_softmax: subtract from each candidate's logit the log of its chance of being a "
        "candidate (its train share among the batch's targets, plus the uniform negatives), so popular items "
        "are not pushed down for being in-batch negatives more often than a full softmax would make them "
        "(Debian set, docs/BENCHMARKS.md: validation NDCG@10 after 2 epochs 0.225 without, 0.333 with).",
    )
    window_stride: int | None = Field(
        None, ge=1, description="Training windows over long histories start every N items; None: max_seq_len."
    )
    sequence_order: Literal["auto", "as_given", "shuffled"] = Field(
        "auto",
        description="as_given: train on each user's items in time order; shuffled: every epoch puts each "
        "user's train items in a fresh random order before windowing, an order-free objective for data "
        "without timestamps (where the stored order is only item_idx); auto: shuffled exactly when the split "
        "was a random leave-one-out.",
    )
    training: TrainingSettings = Field(
        default_factory=lambda: TrainingSettings(**NEXT_ITEM_TRAINING),
        description="Training loop (learning_rate: transformer and projection; lm_learning_rate: the item "
        "encoder when finetune_item_encoder).",
    )

    @field_validator("training", mode="before")
    @classmethod
    def _training_defaults(cls, value: Any) -> Any:
        return merged_training(NEXT_ITEM_TRAINING, value)

    @model_validator(mode="after")
    def _check(self) -> NextItemSettings:
        if not (self.use_text or self.use_id_embedding):
            raise ValueError("next_item needs use_text or use_id_embedding")
        if self.d_model % self.n_heads:
            raise ValueError("next_item.d_model must be a multiple of next_item.n_heads")
        if self.finetune_item_encoder and not self.use_text:
            raise ValueError("next_item.finetune_item_encoder needs use_text")
        if self.finetune_item_encoder and self.loss == "full_softmax" and not self.token_cache:
            raise ValueError("next_item.finetune_item_encoder needs loss=sampled_softmax (or auto) or "
                             "token_cache")
        return self


class ZeroShotSettings(_Section):
    """Untrained reference: cosine between the mean of recent history items and every item."""

    history_items: int = Field(20, ge=1,
                               description="Most recent history items averaged into the user vector.")
    history_penalty: Literal["auto", "exclude", "off"] = Field(
        "off", description="Push history items below all others (see next_item.history_penalty); off matches "
        "the reference zero-shot definition.",
    )


class BiEncoderSettings(_Section):
    """Two-tower retrieval: user profile text vs item text, InfoNCE with in-batch negatives."""

    share_towers: bool = Field(True, description="One language model for both towers (half the memory).")
    history_penalty: Literal["auto", "exclude", "off"] = Field(
        "auto", description="Push history items below all others: exclude, off, or auto (exclude when under "
        "1% of train events repeat an item).",
    )
    profile_max_length: int = Field(128, ge=8, le=512, description="Token budget of the user profile text.")
    profile_max_items: int = Field(20, ge=1, description="Most recent items named in the local profile text.")
    item_max_length: int = Field(48, ge=8, le=512, description="Token budget of an item text while training.")
    temperature: float = Field(0.05, gt=0, description="InfoNCE temperature (cosine similarities / T).")
    examples_per_user: int = Field(
        4, ge=1, description="Training pairs per user per epoch: (profile of a prefix, the next item)."
    )
    min_prefix: int = Field(5, ge=1, description="Shortest history a training profile is built from.")
    faiss_min_items: int = Field(
        1_000_000, ge=1, description="Use a faiss inner-product index at or above this catalogue size (if "
        "faiss is importable); below it, an exact matrix product.",
    )
    score_batch_size: int = Field(64, ge=1, description="Profiles per forward pass at scoring time.")
    training: TrainingSettings = Field(
        default_factory=lambda: TrainingSettings(**BI_ENCODER_TRAINING),
        description="Fine-tuning recipe of the towers.",
    )

    @field_validator("training", mode="before")
    @classmethod
    def _training_defaults(cls, value: Any) -> Any:
        return merged_training(BI_ENCODER_TRAINING, value)


class CrossEncoderSettings(_Section):
    """Reranker: [CLS] profile [SEP] item text -> logit, trained on hard negatives of a retriever."""

    max_length: int = Field(160, ge=16, le=512, description="Token budget of the profile + item pair.")
    profile_max_items: int = Field(10, ge=1, description="Most recent items named in the profile text.")
    candidates: int = Field(20, ge=2, description="Retriever top-k reranked per user.")
    negatives_per_positive: int = Field(3, ge=1,
                                        description="Hard negatives from the retriever per positive.")
    loss: Literal["pointwise", "listwise"] = Field(
        "pointwise", description="pointwise: BCE per pair; listwise: softmax CE over positive + its "
        "negatives."
    )
    examples_per_user: int = Field(1, ge=1, description="Positives (history prefixes) per user per epoch.")
    min_prefix: int = Field(5, ge=1, description="Shortest history a training profile is built from.")
    score_batch_size: int = Field(64, ge=1, description="Pairs per forward pass at scoring time.")
    retriever_weight: float | None = Field(
        None, ge=0,
        description="Candidate score = cross-encoder logit + weight * the retriever's score standardized "
        "over the candidates; None: chosen after training from fusion_grid on the validation metric.",
    )
    fusion_grid: list[float] = Field(
        [0.0, 0.5, 1.0, 2.0, 4.0, 16.0], description="Retriever weights tried when retriever_weight is None."
    )
    training: TrainingSettings = Field(
        default_factory=lambda: TrainingSettings(**CROSS_ENCODER_TRAINING),
        description="Fine-tuning recipe of the reranker.",
    )

    @field_validator("training", mode="before")
    @classmethod
    def _training_defaults(cls, value: Any) -> Any:
        return merged_training(CROSS_ENCODER_TRAINING, value)


class ModelingConfig(_Section):
    """Everything the language-model recommenders need."""

    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings, description="Device, threads, seed.")
    train: list[LanguageModelName] = Field(
        ["next_item_lm", "zero_shot_lm"],
        description="Models the fine_tune step trains, in order. The demo trains the default ranker and the "
        "zero-shot reference; benchmarks add next_item_id (the ID-only ablation), bi_encoder, cross_encoder.",
    )
    serve: str = Field("next_item_lm",
                       description="The model exported to the serving bundle (a next-item model).")
    max_history: int = Field(
        200, ge=1, description="History tokens a served request carries (Triton's fixed input width)."
    )
    warm_start_dir: Path | None = Field(
        None, description="Folder of saved language models (the champion's); next-item models start from the "
        "weights in <dir>/<model name> (retraining). None: train from the pretrained LM only.",
    )
    cross_encoder_retriever: str = Field(
        "next_item_lm", description="Which trained model the cross-encoder reranks."
    )
    item_encoder: ItemEncoderSettings = Field(
        default_factory=ItemEncoderSettings, description="Item text -> vector language model."
    )
    next_item: NextItemSettings = Field(default_factory=NextItemSettings, description="Default ranker.")
    zero_shot: ZeroShotSettings = Field(default_factory=ZeroShotSettings, description="Untrained reference.")
    bi_encoder: BiEncoderSettings = Field(default_factory=BiEncoderSettings,
                                          description="Two-tower retriever.")
    cross_encoder: CrossEncoderSettings = Field(
        default_factory=CrossEncoderSettings, description="Reranker on top of a retriever."
    )

    @model_validator(mode="before")
    @classmethod
    def _profile_under_given_values(cls, data: Any) -> Any:
        """The full profile replaces defaults only: values the user gave (YAML, env, --set) win over it."""
        if not isinstance(data, Mapping):
            return data
        runtime = data.get("runtime")
        if isinstance(runtime, BaseModel):
            runtime = runtime.model_dump(exclude_unset=True)
        if not isinstance(runtime, Mapping) or runtime.get("profile") != "full":
            return data
        given = {k: v.model_dump(exclude_unset=True) if isinstance(v, BaseModel) else v
                 for k, v in data.items()}
        return merge_profile(FULL_PROFILE_OVERRIDES, given)


def apply_profile(config: ModelingConfig, profile: Literal["demo", "full"]) -> ModelingConfig:
    """Return a copy of ``config`` in the profile (demo: unchanged, full: FULL_PROFILE_OVERRIDES).

    The profile fills only what the config did not set explicitly: a user's values keep precedence.
    """
    if profile == "demo":
        return config.model_copy(deep=True)
    if profile != "full":
        raise ValueError(f"unknown profile {profile!r}; expected 'demo' or 'full'")
    given = config.model_dump(exclude_unset=True)
    return ModelingConfig.model_validate(
        {**given, "runtime": {**given.get("runtime", {}), "profile": "full"}})
