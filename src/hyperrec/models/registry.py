"""Model name -> Recommender class, so that a saved model folder can be loaded without knowing its class.

Every saved model writes ``model.json`` with a ``"model"`` key holding its ``Recommender.name``;
``load_model`` reads it and dispatches. Models outside this module join with ``register_model``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hyperrec.config import BaselinesConfig, HyperrecConfig
from hyperrec.errors import ModelError
from hyperrec.model_names import LANGUAGE_MODEL_CLASSES, MODEL_FILE
from hyperrec.models.base import Recommender
from hyperrec.models.factorization import ALSRecommender, BPRRecommender
from hyperrec.models.item_knn import ItemKNNRecommender
from hyperrec.models.popularity import PopularityRecommender

#: The classical baselines, in the order reports list them.
BASELINES: tuple[type[Recommender], ...] = (
    PopularityRecommender, ItemKNNRecommender, ALSRecommender, BPRRecommender,
)
_MODELS: dict[str, type[Recommender]] = {cls.name: cls for cls in BASELINES}


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Make ``cls`` loadable by name (usable as a class decorator); a name can be registered once."""
    existing = _MODELS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ModelError(f"model name {cls.name!r} is already registered to {existing.__name__}")
    _MODELS[cls.name] = cls
    return cls


def model_class(name: str) -> type[Recommender]:
    if name not in _MODELS:
        _register_language_model(name)
    try:
        return _MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {sorted(_MODELS)}") from None


def _register_language_model(name: str) -> None:
    """Language models register on first use, so that loading a baseline never imports torch."""
    import importlib

    path = LANGUAGE_MODEL_CLASSES.get(name)
    if path is not None:
        module, _, attribute = path.partition(":")
        register_model(getattr(importlib.import_module(f"hyperrec.modeling.{module}"), attribute))


def build_baseline(name: str, config: BaselinesConfig, *, seed: int, threads: int = 1) -> Recommender:
    """An unfitted baseline by name, configured from ``config``."""
    if name not in {cls.name for cls in BASELINES}:
        raise ModelError(f"unknown baseline {name!r}; known: {[cls.name for cls in BASELINES]}")
    return _MODELS[name](config, seed=seed, threads=threads)


def build_baselines(cfg: HyperrecConfig) -> dict[str, Recommender]:
    """Every baseline, unfitted, keyed by name, with the run's seed and thread count."""
    return {cls.name: build_baseline(cls.name, cfg.baselines, seed=cfg.seed, threads=cfg.threads)
            for cls in BASELINES}


def load_model(directory: Path) -> Recommender:
    """Load whatever model ``directory`` holds, dispatching on the name in its ``model.json``."""
    path = Path(directory) / MODEL_FILE
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["model"]
    except FileNotFoundError:
        raise ModelError(f"no saved model at {directory} ({MODEL_FILE} missing)") from None
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ModelError(f"{path} does not name its model") from None
    return model_class(name).load(Path(directory))
