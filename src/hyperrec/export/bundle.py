"""The serving bundle: one folder with everything the transformer and the predictor (Triton or embedded) need.

Layout written by :func:`build_bundle`::

    manifest.json                  model name, version, n_items, max_history, tensor specs, lineage, sha256s
    items.parquet                  item_id, title, categories, popularity, item_idx (catalogue order)
    triton/<model>/config.pbtxt    Triton model config for GPUs (onnxruntime_onnx, dynamic batching, KIND_GPU)
    triton/<model>/configs/cpu.pbtxt
                                   the same model on CPUs; Triton picks it with ``--model-config-name=cpu``
    triton/<model>/1/model.onnx    the ranker (version 1 of the Triton repository)
    <extra files>                  optional: item_embeddings.npy, segments.parquet,
    segment_popularity.parquet,
                                   cold_slot.json (+ cold_slot_vectors.npy)

``triton/`` is a ready Triton model repository (``tritonserver --model-repository=<bundle>/triton``).

The ranker contract (the trained next-item model exports to it):

- input ``history`` INT64 [batch, seq]: ``hyperrec.features.encode_histories`` output (left-padded item
  tokens, item_idx + 1, 0 = pad); the transformer always sends ``seq = max_history``, so Triton can batch
  requests;
- input ``segment`` INT64 [batch]: ``hyperrec.features.encode_segments`` output;
- output ``scores`` FP32 [batch, n_items] in catalogue order (items.parquet item_idx);
- outputs ``top_ids`` INT64 / ``top_scores`` FP32 [batch, K]: the best K items that are not in the history,
  best first (``hyperrec.export.next_item_topk`` appends them; K = ``manifest["top_k"]``);
- outputs ``cold_id`` INT64 / ``cold_score`` FP32 [batch, 1], only in bundles with a non-empty
  ``cold_slot.json``: the cold slot's item outside the history and its score (what the slot needs beside the
  top K; ``has_cold_outputs``): the best-scored cold item, or for a slot that chooses by the history's text
  (it ships ``cold_slot_vectors.npy``) the one closest in text to the history's tail (``next_item_topk``).

Reading and verifying a bundle (``read_manifest``, ``verify_bundle``, from ``hyperrec.bundle_verify``) need
only the standard library; building imports onnx, onnxruntime and tritonclient's model-config protobufs
lazily.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperrec.bundle_verify import (
    BUNDLE_FORMAT,
    ITEM_EMBEDDINGS_FILE,
    ITEMS_FILE,
    MANIFEST_FILE,
    SEGMENT_POPULARITY_FILE,
    SEGMENTS_FILE,
    TRITON_DIR,
    hash_bundle_files,
    read_manifest,
    verify_bundle,
)
from hyperrec.errors import BundleError
from hyperrec.export.onnx_contract import (
    COLD_ID_OUTPUT,
    ONNX_FILE,
    SEGMENT_INPUT,
    check_onnx_contract,
    input_specs,
    output_specs,
)
from hyperrec.export.triton_config import TritonSettings, triton_config_text

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

#: The names a bundle reader needs, all defined once in ``hyperrec.bundle_verify``.
__all__ = [
    "BUNDLE_FORMAT", "ITEM_EMBEDDINGS_FILE", "ITEMS_FILE", "MANIFEST_FILE", "SEGMENT_POPULARITY_FILE",
    "SEGMENTS_FILE", "TRITON_DIR", "build_bundle", "has_cold_outputs", "onnx_path", "read_manifest",
    "to_wire", "verify_bundle", "with_popularity",
]
TRITON_VERSION = "1"
CPU_CONFIG_NAME = "cpu"
ITEM_COLUMNS = ("item_id", "title", "categories", "popularity", "item_idx")


def to_wire(name: str, array: np.ndarray) -> np.ndarray:
    """The tensor as a V2 client sends it: Triton's config declares ``segment`` with dims [1] reshaped to []
    for the model, so on the wire it is [B, 1] while the ONNX model sees [B]."""
    return array.reshape(-1, 1) if name == SEGMENT_INPUT else array
_RESERVED = {MANIFEST_FILE, ITEMS_FILE, TRITON_DIR}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def has_cold_outputs(manifest: Mapping[str, Any]) -> bool:
    """Whether the bundle's graph returns the best cold item (``cold_id``/``cold_score``)."""
    return COLD_ID_OUTPUT in {spec.get("name") for spec in manifest.get("outputs", [])}


# --------------------------------------------------------------------------------------------- building


def build_bundle(
    onnx_model: Path,
    items: pd.DataFrame,
    out: Path,
    *,
    model_name: str,
    version: str,
    max_history: int,
    extra_files: Mapping[str, Path] | None = None,
    lineage: Mapping[str, Any],
    triton: TritonSettings | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Check the ONNX model against the contract and write the bundle folder ``out``; return the manifest.

    The folder is written beside ``out`` and renamed into place, so a crash never leaves half a bundle.

    Args:
        onnx_model: the ranker, checked against the contract before and after the top-k outputs are added.
        items: the catalogue (``ITEM_COLUMNS``; ``with_popularity`` adds popularity).
        out: the bundle folder to write.
        model_name: the Triton model name (1-128 of [A-Za-z0-9_.-]).
        version: the bundle version recorded in the manifest.
        max_history: the history length the transformer sends.
        extra_files: a file name inside the bundle -> a source path (the module doc names the files the
            runtime understands).
        lineage: free JSON (training run id, data hash, metrics, git commit).
        triton: Triton batching and top-k settings (default: ``TritonSettings()``).
        overwrite: replace an existing ``out``.

    Returns:
        The manifest, as written to manifest.json.
    """
    triton = triton or TritonSettings()
    _check_request(Path(onnx_model), model_name, version, max_history)
    frame = _clean_items(items)
    check_onnx_contract(Path(onnx_model), n_items=len(frame), max_history=max_history)
    extras = dict(extra_files or {})
    _check_extras(extras, lineage)
    _check_known_extras(extras, len(frame))
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"bundle folder already exists: {out} (pass overwrite=True to replace it)")
    with _staging(out) as staging:
        frame.to_parquet(staging / ITEMS_FILE, index=False)
        shape = _write_triton_model(staging / TRITON_DIR / model_name, Path(onnx_model), model_name, extras,
                                    n_items=len(frame), max_history=max_history, triton=triton)
        for name, source in extras.items():
            shutil.copyfile(source, staging / name)
        manifest = _manifest(model_name, version, shape, triton, sorted(extras), lineage)
        manifest["files"] = hash_bundle_files(staging)
        _write_json_durably(staging / MANIFEST_FILE, manifest)
    logger.info("wrote serving bundle %s (model %s v%s, %d items)", out, model_name, version, len(frame))
    return manifest


def _check_request(onnx_model: Path, model_name: str, version: str, max_history: int) -> None:
    """Fail with one clear BundleError before anything is read or written."""
    _check_name(model_name, "model_name")
    if not str(version).strip():
        raise BundleError("version must not be empty")
    if max_history < 1:
        raise BundleError("max_history must be >= 1")
    if not onnx_model.is_file():
        raise BundleError(f"ONNX model not found: {onnx_model}")


def _check_extras(extras: Mapping[str, Path], lineage: Mapping[str, Any]) -> None:
    """Extra file names are safe and unreserved, their sources exist, and the lineage is JSON."""
    for name, source in extras.items():
        _check_name(name, "extra file name")
        if name in _RESERVED:
            raise BundleError(f"extra file name {name!r} is reserved")
        if not Path(source).is_file():
            raise BundleError(f"extra file {name!r} not found: {source}")
    try:
        json.dumps(dict(lineage))
    except (TypeError, ValueError) as exc:
        raise BundleError(f"lineage must be JSON-serialisable: {exc}") from None


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out``, renamed onto ``out`` when the block succeeds and removed when it
    fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_triton_model(model_dir: Path, onnx_model: Path, model_name: str, extras: Mapping[str, Path], *,
                        n_items: int, max_history: int, triton: TritonSettings) -> dict[str, Any]:
    """Version 1 of the Triton model (the ranker with its top-k and cold outputs) and its GPU and CPU configs;
    return the shape the manifest records (n_items, max_history, top_k, cold)."""
    from hyperrec.export.next_item_topk import cold_slot_of, write_with_top_k  # imports this module

    onnx_file = model_dir / TRITON_VERSION / ONNX_FILE
    onnx_file.parent.mkdir(parents=True)
    cold_slot = cold_slot_of(extras, n_items, max_history)
    top_k = write_with_top_k(onnx_model, onnx_file, k=triton.top_k, n_items=n_items, cold_slot=cold_slot)
    cold = cold_slot is not None
    check_onnx_contract(onnx_file, n_items=n_items, max_history=max_history, top_k=top_k, cold=cold)
    (model_dir / "configs").mkdir()
    shape = {"n_items": n_items, "max_history": max_history, "top_k": top_k, "cold": cold}
    (model_dir / "config.pbtxt").write_text(
        triton_config_text(model_name, gpu=True, settings=triton, **shape), encoding="utf-8")
    (model_dir / "configs" / f"{CPU_CONFIG_NAME}.pbtxt").write_text(
        triton_config_text(model_name, gpu=False, settings=triton, **shape), encoding="utf-8")
    return shape


def _manifest(model_name: str, version: str, shape: Mapping[str, Any], triton: TritonSettings,
              extra_names: list[str], lineage: Mapping[str, Any]) -> dict[str, Any]:
    """manifest.json without its ``files`` map (the caller hashes the finished folder)."""
    n_items, top_k = shape["n_items"], shape["top_k"]
    return {
        "format": BUNDLE_FORMAT,
        "model_name": model_name,
        "version": str(version),
        "n_items": n_items,
        "max_history": int(shape["max_history"]),
        "inputs": [spec.to_json() for spec in input_specs()],
        "outputs": [spec.to_json() for spec in output_specs(n_items, top_k, cold=shape["cold"])],
        "top_k": top_k,
        "triton": {
            "repository": TRITON_DIR,
            "model_version": TRITON_VERSION,
            "cpu_config_name": CPU_CONFIG_NAME,
            "max_batch_size": triton.max_batch_size,
        },
        "extra_files": extra_names,
        "lineage": dict(lineage),
    }


def with_popularity(items: pd.DataFrame, positives: pd.DataFrame) -> pd.DataFrame:
    """items plus a ``popularity`` column: the share of positive events (item_idx column) on each item."""
    import numpy as np

    counts = np.bincount(positives["item_idx"].to_numpy(dtype=np.int64), minlength=len(items))[: len(items)]
    total = max(int(counts.sum()), 1)
    frame = items.copy()
    frame["popularity"] = counts.astype(np.float64) / total
    return frame


def onnx_path(root: Path, manifest: Mapping[str, Any]) -> Path:
    """Where the bundle keeps the ONNX ranker."""
    return Path(root) / TRITON_DIR / str(manifest["model_name"]) / TRITON_VERSION / ONNX_FILE


# --------------------------------------------------------------------------------------------- helpers


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise BundleError(f"{what} {name!r} must be 1-128 of [A-Za-z0-9_.-], starting alphanumeric")


def _clean_items(items: pd.DataFrame) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    missing = [c for c in ITEM_COLUMNS if c not in items.columns]
    if missing:
        hint = " (add one with hyperrec.export.bundle.with_popularity)" if "popularity" in missing else ""
        raise BundleError(f"items frame lacks columns {missing}{hint}")
    if items.empty:
        raise BundleError("items frame is empty")
    frame = items.loc[:, list(ITEM_COLUMNS)].reset_index(drop=True).copy()
    idx = frame["item_idx"].to_numpy()
    if not np.array_equal(idx, np.arange(len(frame))):
        raise BundleError("items.item_idx must equal the row number (0..n-1, catalogue order)")
    frame["item_id"] = frame["item_id"].astype(str)
    if frame["item_id"].duplicated().any():
        raise BundleError("items.item_id must be unique")
    frame["title"] = frame["title"].fillna("").astype(str)
    frame["categories"] = [
        [str(c) for c in cats] if isinstance(cats, (list, tuple, np.ndarray)) else []
        for cats in frame["categories"]
    ]
    popularity = pd.to_numeric(frame["popularity"], errors="coerce")
    if popularity.isna().any() or (popularity < 0).any():
        raise BundleError("items.popularity must be a non-negative number for every item")
    frame["popularity"] = popularity.astype(np.float64)
    frame["item_idx"] = frame["item_idx"].astype(np.int32)
    return frame


def _check_known_extras(extras: Mapping[str, Path], n_items: int) -> None:
    import numpy as np
    import pandas as pd

    if ITEM_EMBEDDINGS_FILE in extras:
        emb = np.load(extras[ITEM_EMBEDDINGS_FILE], mmap_mode="r", allow_pickle=False)
        if emb.ndim != 2 or emb.shape[0] != n_items:
            raise BundleError(f"{ITEM_EMBEDDINGS_FILE} must be [n_items={n_items}, dim]; got {emb.shape}")
    if SEGMENTS_FILE in extras:
        seg = pd.read_parquet(extras[SEGMENTS_FILE])
        if not {"user_id", "segment"} <= set(seg.columns):
            raise BundleError(f"{SEGMENTS_FILE} needs columns user_id (pseudonymized), segment")
    if SEGMENT_POPULARITY_FILE in extras:
        pop = pd.read_parquet(extras[SEGMENT_POPULARITY_FILE])
        if not {"segment", "item_idx", "popularity"} <= set(pop.columns):
            raise BundleError(f"{SEGMENT_POPULARITY_FILE} needs columns segment, item_idx, popularity")


def _write_json_durably(path: Path, payload: Mapping[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
