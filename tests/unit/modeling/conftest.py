"""Fixtures of the modelling tests: a tiny prepared-data folder and a tiny random BERT (never the real
MiniLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from modeling_fixtures import GENRES, WORDS, cyclic_sequences, write_prepared

from hyperrec.data.prepared import PreparedData
from hyperrec.modeling.item_encoder import build_tiny_bert
from hyperrec.modeling.settings import ItemEncoderSettings, RuntimeSettings


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), extra_words=WORDS + GENRES)


@pytest.fixture
def runtime() -> RuntimeSettings:
    return RuntimeSettings(threads=1, device="cpu", progress=False, seed=7)


@pytest.fixture
def encoder_settings(tiny_bert_path: Path, tmp_path: Path) -> ItemEncoderSettings:
    return ItemEncoderSettings(
        model_path=tiny_bert_path, max_length=24, batch_size=16, cache_dir=tmp_path / "cache"
    )


@pytest.fixture
def cyclic_data(tmp_path: Path) -> PreparedData:
    """24 items (item 23 never interacted with: a cold item), 40 users walking the cycle."""
    return write_prepared(tmp_path / "prepared", cyclic_sequences(40, 24, 14, skip={23}), 24)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
