"""MonitoringConfig: typed, documented, strict."""

import pytest
from pydantic import BaseModel, ValidationError

from hyperrec.monitoring.settings import CHECK_NAMES, MonitoringConfig


def _fields(model: type[BaseModel], prefix: str = ""):
    for name, info in model.model_fields.items():
        yield f"{prefix}{name}", info
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, prefix=f"{prefix}{name}.")


def test_every_field_has_a_description():
    missing = [name for name, info in _fields(MonitoringConfig) if not info.description]
    assert missing == []


def test_defaults_cover_every_check_with_a_threshold():
    cfg = MonitoringConfig()
    assert set(CHECK_NAMES) == {
        "event_mix", "item_popularity", "rating", "dwell_seconds", "user_activity", "item_embeddings",
        "profile_embeddings", "prediction_score", "recommended_items", "ctr",
    }
    assert all(getattr(cfg.drift.thresholds, name) > 0 for name in CHECK_NAMES)
    assert cfg.trigger.cooldown_seconds > 0 and cfg.trigger.max_attempts >= 1
    assert cfg.quality.floor is not None


def test_unknown_keys_and_unknown_checks_are_rejected():
    with pytest.raises(ValidationError):
        MonitoringConfig.model_validate({"drift": {"thresholdz": {}}})
    with pytest.raises(ValidationError, match="unknown checks"):
        MonitoringConfig.model_validate({"drift": {"disabled_checks": ["not_a_check"]}})
    with pytest.raises(ValidationError):
        MonitoringConfig.model_validate(
            {"drift": {"thresholds": {"item_embeddings": 0.4}}}
        )  # AUC must be > 0.5


def test_the_section_mounts_into_hyperrec_config_and_round_trips():
    import yaml

    from hyperrec.config import HyperrecConfig

    text = "monitoring:\n  drift:\n    thresholds: {rating: 0.3}\n  trigger:\n    kfp: {host: 'http://kfp'}\n"
    cfg = HyperrecConfig.model_validate(yaml.safe_load(text))
    assert cfg.monitoring.drift.thresholds.rating == 0.3
    assert HyperrecConfig.model_validate(yaml.safe_load(cfg.to_yaml())) == cfg
    assert HyperrecConfig.model_validate_json(cfg.to_json()).monitoring.trigger.kfp.host == "http://kfp"
