"""The typed config: defaults, YAML, env vars and CLI overrides, in that order of precedence."""

from pathlib import Path

import pytest

from hyperrec.config import FOLLOWED_KEYS, HyperrecConfig, config_from_yaml, load_config
from hyperrec.errors import ConfigError


def test_defaults_point_at_the_shared_movielens_folder():
    cfg = load_config(environ={})
    assert cfg.data.dataset_dir == Path("../shared/datasets/ml-latest-small")
    assert cfg.data.format == "movielens"
    assert cfg.evaluation.sampled_negatives == 100


def test_yaml_then_env_then_overrides_win_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\nprep:\n  min_rating: 3.5\n  negatives_per_positive: 2\n")
    cfg = load_config(
        path,
        overrides=["prep.negatives_per_positive=7"],
        environ={"HYPERREC__SEED": "5", "HYPERREC__PREP__MIN_RATING": "4.0"},
    )
    assert cfg.seed == 5
    assert cfg.prep.min_rating == 4.0
    assert cfg.prep.negatives_per_positive == 7


def test_unknown_key_is_rejected_with_its_location():
    with pytest.raises(ConfigError, match="prep.no_such_setting"):
        load_config(overrides=["prep.no_such_setting=1"], environ={})


def test_invalid_value_names_the_field():
    with pytest.raises(ConfigError, match="prep.negatives_per_positive"):
        load_config(overrides=["prep.negatives_per_positive=0"], environ={})


def test_malformed_override_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(overrides=["seed"], environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", environ={})


def test_yaml_round_trip_rebuilds_the_same_config():
    cfg = load_config(overrides=["prep.min_rating=4", "evaluation.k_values=[5, 10]"], environ={})
    assert config_from_yaml(cfg.to_yaml()) == cfg
    assert config_from_yaml(cfg.to_json()) == cfg


def test_default_mlflow_uri_is_a_sqlite_file_beside_the_outputs(tmp_path):
    cfg = load_config(overrides=[f"output_dir={tmp_path / 'out' / 'latest'}"], environ={})
    assert cfg.mlflow_uri() == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"


def test_seed_threads_and_positive_labels_are_set_once_and_sections_follow():
    cfg = load_config(overrides=["seed=7", "threads=1", "prep.min_rating=4", "prep.min_dwell_seconds=30"],
                      environ={})
    assert cfg.modeling.runtime.seed == cfg.monitoring.drift.seed == 7
    assert cfg.modeling.runtime.threads == 1
    assert (cfg.monitoring.feedback.min_rating, cfg.monitoring.feedback.min_dwell_seconds) == (4, 30)
    assert config_from_yaml(cfg.to_yaml()) == cfg


def test_a_section_key_that_is_set_still_wins_over_the_key_it_follows(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 7\nmonitoring:\n  drift:\n    seed: 3\n")
    cfg = load_config(path, overrides=["modeling.runtime.seed=5", "prep.min_rating=4"],
                      environ={"HYPERREC__MONITORING__FEEDBACK__MIN_RATING": "2"})
    assert (cfg.seed, cfg.modeling.runtime.seed, cfg.monitoring.drift.seed) == (7, 5, 3)
    assert (cfg.prep.min_rating, cfg.monitoring.feedback.min_rating) == (4, 2)


def test_a_following_key_defaults_to_the_default_of_its_source():
    """Without the source set, a follower keeps its own default: the two must agree."""
    cfg = HyperrecConfig()
    for follower, source in FOLLOWED_KEYS.items():
        assert _get(cfg, follower) == _get(cfg, source), follower


def _get(cfg, dotted):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg
