"""Item text, the text encoder (tiny random BERT) and the on-disk embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyperrec.errors import ModelError
from hyperrec.modeling import item_encoder as ie
from hyperrec.modeling.embedding_cache import EmbeddingCache, cache_key
from hyperrec.modeling.item_encoder import TextEncoder, embed_catalogue, item_text, item_texts


def test_item_text_has_title_genres_and_top_tags() -> None:
    text = item_text("Heat (1995)", ["Action", "Crime"], "heist, pacino, de niro, la", max_tags=2)
    assert text == "Heat (1995). Genres: Action, Crime. Tags: heist, pacino"
    assert item_text("X", [], None) == "X"
    assert item_text("X", ["Drama"], "", include_categories=False) == "X"
    items = pd.DataFrame(
        {"item_idx": [1, 0], "title": ["B", "A"], "categories": [["c"], []], "text": ["", "t"]}
    )
    assert item_texts(items) == ["A. Tags: t", "B. Genres: c"]


def test_encoder_gives_unit_vectors_independent_of_batching(tiny_bert_path: Path) -> None:
    encoder = TextEncoder(tiny_bert_path, max_length=16)
    texts = ["love story (1990). Genres: drama", "war", "night city girl boy house time world"]
    together = encoder.encode(texts, batch_size=8)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    assert together.shape == (3, encoder.dim) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding does not change the mean pooling
    assert len(encoder.transformer_layers()) == 2
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="never downloaded"):
        TextEncoder(tmp_path / "nothing")


def test_catalogue_embeddings_are_cached_on_disk(tiny_bert_path: Path, encoder_settings, runtime,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"item {w}" for w in ("love", "war", "night", "city")]
    calls = []
    original = TextEncoder.encode

    def counting(self, batch, **kwargs):
        calls.append(len(batch))
        return original(self, batch, **kwargs)

    monkeypatch.setattr(TextEncoder, "encode", counting)
    first = embed_catalogue(texts, encoder_settings, runtime)
    second = embed_catalogue(texts, encoder_settings, runtime)
    assert calls == [4]
    np.testing.assert_array_equal(first, second)
    assert len(list(encoder_settings.cache_dir.glob("*.npy"))) == 1
    embed_catalogue(texts, encoder_settings.model_copy(update={"max_length": 12}), runtime)  # new key
    embed_catalogue(texts[:3], encoder_settings, runtime)  # new texts, new key
    assert calls == [4, 4, 3]
    # an encoder whose weights were trained in memory is never cached
    encoder = TextEncoder(tiny_bert_path, max_length=24)
    encoder.modified = True
    embed_catalogue(texts, encoder_settings, runtime, encoder=encoder)
    embed_catalogue(texts, encoder_settings, runtime, encoder=encoder)
    assert calls == [4, 4, 3, 4, 4]


def test_cache_key_depends_on_every_part(tmp_path: Path) -> None:
    base = cache_key("m", 32, ["a", "b"])
    assert base != cache_key("m2", 32, ["a", "b"])
    assert base != cache_key("m", 64, ["a", "b"])
    assert base != cache_key("m", 32, ["ab"])
    assert base != cache_key("m", 32, ["b", "a"])
    cache = EmbeddingCache(None)
    out = cache.get_or_compute("m", 32, ["a"], lambda t: np.ones((1, 2)))
    assert out.dtype == np.float32 and cache.misses == 1


def test_default_model_is_the_packaged_minilm() -> None:
    path = ie.default_model_path()
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()


@pytest.mark.slow
def test_real_minilm_similarity_makes_sense() -> None:
    encoder = TextEncoder(None, max_length=32)
    vectors = encoder.encode(["Toy Story (1995). Genres: Animation, Children, Comedy",
                              "Toy Story 2 (1999). Genres: Animation, Children, Comedy",
                              "Saw (2004). Genres: Horror, Thriller"])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
