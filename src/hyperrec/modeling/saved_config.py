"""The ``model.json`` every language model saves beside its weights: the settings sections it was built
with, read back by its ``load`` (the registry reads the file's ``model`` key). Used module-qualified:
``saved_config.write(directory, {...})``, ``saved_config.read(directory, "bi-encoder")``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from hyperrec.errors import ModelError, read_json
from hyperrec.model_names import MODEL_FILE
from hyperrec.modeling.settings import ItemEncoderSettings, RuntimeSettings
from hyperrec.modeling.trainer import TrainResult
from hyperrec.settings_base import Section


class _Configured(Protocol):
    settings: Section
    item_encoder_settings: ItemEncoderSettings
    runtime: RuntimeSettings


def sections(model: _Configured) -> dict[str, Any]:
    """The ``settings``, ``item_encoder`` and ``runtime`` entries of a model's ``model.json``."""
    return {
        "settings": model.settings.model_dump(mode="json"),
        "item_encoder": model.item_encoder_settings.model_dump(mode="json"),
        "runtime": model.runtime.model_dump(mode="json"),
    }


def shared(config: dict[str, Any]) -> dict[str, Any]:
    """The ``item_encoder`` and ``runtime`` keyword arguments of a model's constructor, from its
    ``model.json``."""
    return {"item_encoder": ItemEncoderSettings.model_validate(config["item_encoder"]),
            "runtime": RuntimeSettings.model_validate(config["runtime"])}


def train_result(config: dict[str, Any]) -> TrainResult | None:
    """The ``train_result`` of a ``model.json``; None when it holds none."""
    return TrainResult.from_dict(config["train_result"]) if config.get("train_result") else None


def write(directory: Path, config: dict[str, Any]) -> None:
    (Path(directory) / MODEL_FILE).write_text(json.dumps(config, indent=1), encoding="utf-8")


def read(directory: Path, what: str) -> dict[str, Any]:
    """The ``model.json`` in ``directory``; ModelError ``no saved <what> in <directory>`` when missing, and
    one naming the file when it cannot be read or parsed."""
    return read_json(Path(directory) / MODEL_FILE, ModelError, missing=f"no saved {what} in {directory}",
                     what=MODEL_FILE)
