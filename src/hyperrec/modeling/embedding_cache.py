"""On-disk cache of text embeddings, so that a frozen encoder embeds a catalogue once.

Key: the encoder's identity (resolved model path + a fingerprint of its weight files, or an explicit tag for
an in-memory model) + max length + pooling + the SHA-256 of the texts in order. Values are ``.npy`` files
written atomically; a corrupt or mismatching file is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def texts_sha256(texts: Sequence[str]) -> str:
    """SHA-256 over the texts in order (length-prefixed, so that boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def cache_key(encoder_id: str, max_length: int, texts: Sequence[str], pooling: str = "mean+l2") -> str:
    """The file stem under which these texts' embeddings are stored."""
    payload = json.dumps(
        {"encoder": encoder_id, "max_length": max_length, "pooling": pooling, "texts": texts_sha256(texts),
         "n": len(texts)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """A folder of ``<key>.npy`` (float32, one row a text) plus ``<key>.json`` (what the key stands for)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else None
        self.hits = 0
        self.misses = 0

    def get_or_compute(
        self,
        encoder_id: str,
        max_length: int,
        texts: Sequence[str],
        compute: Callable[[Sequence[str]], np.ndarray],
    ) -> np.ndarray:
        """Return cached embeddings of ``texts`` or compute, store and return them.

        Without a folder it always computes.

        Args:
            encoder_id: the weights' identity (``TextEncoder.encoder_id``), part of the key.
            max_length: the token limit of each text, part of the key.
            texts: the texts, one row each; their order is part of the key.
            compute: embeds texts on a miss.

        Returns:
            (len(texts), dim) float32 embeddings.
        """
        if self.directory is None:
            self.misses += 1
            return np.asarray(compute(texts), dtype=np.float32)
        key = cache_key(encoder_id, max_length, texts)
        path = self.directory / f"{key}.npy"
        if path.exists():
            try:
                values = np.load(path, allow_pickle=False)
                if values.shape[0] == len(texts):
                    self.hits += 1
                    log.info("embedding cache hit %s (%d texts)", path, len(texts))
                    return values.astype(np.float32, copy=False)
            except (OSError, ValueError) as exc:  # pragma: no cover - corrupt file
                log.warning("ignoring unreadable embedding cache file %s: %s", path, exc)
        self.misses += 1
        values = np.asarray(compute(texts), dtype=np.float32)
        self._write(path, values, {"encoder": encoder_id, "max_length": max_length, "n_texts": len(texts),
                                   "texts_sha256": texts_sha256(texts), "dim": int(values.shape[1])})
        return values

    def _write(self, path: Path, values: np.ndarray, meta: dict) -> None:
        assert self.directory is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npy.tmp")
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, values, allow_pickle=False)
            os.replace(tmp, path)
            path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        except OSError as exc:  # a read-only cache must not break training
            log.warning("could not write embedding cache %s: %s", path, exc)
