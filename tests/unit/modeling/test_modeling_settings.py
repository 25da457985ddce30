"""ModelingConfig: typed, described, strict, with a full (GPU) profile."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from hyperrec.config import config_from_yaml, load_config
from hyperrec.modeling.run_profiles import FULL_PROFILE_OVERRIDES
from hyperrec.modeling.settings import ModelingConfig, NextItemSettings, apply_profile
from hyperrec.modeling.training_settings import TrainingSettings


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _models(annotation)


def test_every_field_is_described_and_extra_is_forbidden() -> None:
    for model in _models(ModelingConfig):
        assert model.model_config.get("extra") == "forbid", model.__name__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    with pytest.raises(ValidationError):
        ModelingConfig.model_validate({"next_item": {"d_modle": 3}})


def test_defaults_are_the_demo_profile() -> None:
    config = ModelingConfig()
    assert config.runtime.profile == "demo"
    assert config.item_encoder.model_path is None  # the packaged MiniLM
    assert config.next_item.use_text and not config.next_item.finetune_item_encoder



def test_no_profile_has_a_wall_clock_budget() -> None:
    """Budgets are epochs/steps: the same seed and threads give the same model on a busy or idle machine."""
    for config in (ModelingConfig(), apply_profile(ModelingConfig(), "full")):
        for section in (config.next_item, config.bi_encoder, config.cross_encoder):
            assert section.training.max_train_seconds is None


def test_partial_training_override_keeps_the_model_defaults() -> None:
    config = ModelingConfig.model_validate({"next_item": {"training": {"max_train_seconds": 60}}})
    default = NextItemSettings().training
    assert config.next_item.training.max_train_seconds == 60
    assert config.next_item.training.max_epochs == default.max_epochs != TrainingSettings().max_epochs
    assert config.next_item.training.learning_rate == default.learning_rate


def test_full_profile_validates_and_differs() -> None:
    full = apply_profile(ModelingConfig(), "full")
    assert full.runtime.profile == "full"
    assert full.next_item.finetune_item_encoder and full.next_item.loss == "sampled_softmax"
    assert full.next_item.training.unfreeze_schedule == FULL_PROFILE_OVERRIDES["next_item"]["training"][
        "unfreeze_schedule"]
    assert full.bi_encoder.training.batch_size == 256
    # untouched keys keep their demo values
    assert full.zero_shot == ModelingConfig().zero_shot
    assert apply_profile(ModelingConfig(), "demo") == ModelingConfig()
    with pytest.raises(ValueError):
        apply_profile(ModelingConfig(), "huge")  # type: ignore[arg-type]


def test_schedule_and_yaml_shaped_values() -> None:
    settings = TrainingSettings.model_validate({"unfreeze_schedule": {"2": -1, "0": 1}})
    assert settings.unfreeze_schedule == {0: 1, 2: -1}
    with pytest.raises(ValidationError):
        TrainingSettings(unfreeze_schedule={1: 2})
    with pytest.raises(ValidationError):
        NextItemSettings(d_model=30, n_heads=4)
    assert ModelingConfig.model_validate(ModelingConfig().model_dump(mode="json")) == ModelingConfig()


def test_full_profile_keeps_the_users_set_values() -> None:
    """Profiles apply before user overrides: --set values survive choosing the full profile."""
    cfg = load_config(overrides=["modeling.runtime.profile=full", "modeling.next_item.training.max_epochs=3",
                                 "modeling.next_item.d_model=32"])
    assert cfg.modeling.next_item.training.max_epochs == 3 and cfg.modeling.next_item.d_model == 32
    # the profile still fills everything the user left alone
    assert cfg.modeling.next_item.training.batch_size == 128 and cfg.modeling.next_item.n_layers == 2
    assert apply_profile(cfg.modeling, "full") == cfg.modeling  # idempotent
    # a pipeline step rebuilds the config from YAML: the same values
    assert config_from_yaml(cfg.to_yaml()).modeling == cfg.modeling


def test_steps_per_epoch_rounds_up_and_honours_the_cap() -> None:
    assert TrainingSettings(batch_size=8).steps_per_epoch(17) == 3
    assert TrainingSettings(batch_size=8).steps_per_epoch(17, per_step=4) == 5
    assert TrainingSettings(batch_size=8, max_steps_per_epoch=2).steps_per_epoch(17) == 2
