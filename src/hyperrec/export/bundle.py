"""The serving bundle: one folder with everything the transformer and the predictor (Triton or embedded) need.

Layout written by :func:`build_bundle`::

    manifest.json                  model name, version, n_items, max_history, tensor specs, lineage, sha256s
    items.parquet                  item_id, title, categories, popularity, item_idx (catalogue order)
    triton/<model>/config.pbtxt    Triton model config for GPUs (onnxruntime_onnx, dynamic batching, KIND_GPU)
    triton/<model>/configs/cpu.pbtxt
                                   the same model on CPUs; Triton picks it with ``--model-config-name=cpu``
    triton/<model>/1/model.onnx    the ranker (version 1 of the Triton repository)
    <extra files>                  optional: item_embeddings.npy, segments.parquet, segment_popularity.parquet,
                                   cold_slot.json (+ cold_slot_vectors.npy)

``triton/`` is a ready Triton model repository (``tritonserver --model-repository=<bundle>/triton``).

The ranker contract (the trained next-item model exports to it):

- input ``history`` INT64 [batch, seq]: ``hyperrec.features.encode_histories`` output (left-padded item tokens,
  item_idx + 1, 0 = pad); the transformer always sends ``seq = max_history``, so Triton can batch requests;
- input ``segment`` INT64 [batch]: ``hyperrec.features.encode_segments`` output;
- output ``scores`` FP32 [batch, n_items] in catalogue order (items.parquet item_idx);
- outputs ``top_ids`` INT64 / ``top_scores`` FP32 [batch, K]: the best K items that are not in the history,
  best first (``hyperrec.export.next_item_topk`` appends them; K = ``manifest["top_k"]``);
- outputs ``cold_id`` INT64 / ``cold_score`` FP32 [batch, 1], only in bundles with a non-empty ``cold_slot.json``:
  the cold slot's item outside the history and its score (what the slot needs beside the top K;
  ``has_cold_outputs``): the best-scored cold item, or for a slot that chooses by the history's text (it ships
  ``cold_slot_vectors.npy``) the one closest in text to the history's tail (``next_item_topk``).

``verify_bundle`` needs only the standard library; building imports onnx, onnxruntime and tritonclient's
model-config protobufs lazily.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperrec.bundle_verify import MANIFEST_FILE, bundle_file_problems, hash_bundle_files
from hyperrec.export.onnx_contract import (
    COLD_ID_OUTPUT,
    ONNX_FILE,
    SEGMENT_INPUT,
    check_onnx_contract,
    input_specs,
    output_specs,
)
from hyperrec.export.triton_config import TritonSettings, triton_config_text
from hyperrec.online.errors import BundleError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "hyperrec-serving-bundle/1"
ITEMS_FILE = "items.parquet"
TRITON_DIR = "triton"
TRITON_VERSION = "1"
CPU_CONFIG_NAME = "cpu"
#: Optional files with a meaning to the runtime; other extra names are carried and checksummed only.
ITEM_EMBEDDINGS_FILE = "item_embeddings.npy"
SEGMENTS_FILE = "segments.parquet"
SEGMENT_POPULARITY_FILE = "segment_popularity.parquet"
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
    ``extra_files`` maps a file name inside the bundle to a source path (see the module doc for the names
    the runtime understands). ``lineage`` is free JSON (training run id, data hash, metrics, git commit).
    """
    from hyperrec.export.next_item_topk import cold_slot_of, write_with_top_k  # imports this module

    triton = triton or TritonSettings()
    _check_name(model_name, "model_name")
    if not str(version).strip():
        raise BundleError("version must not be empty")
    if max_history < 1:
        raise BundleError("max_history must be >= 1")
    onnx_model = Path(onnx_model)
    if not onnx_model.is_file():
        raise BundleError(f"ONNX model not found: {onnx_model}")
    frame = _clean_items(items)
    n_items = len(frame)
    check_onnx_contract(onnx_model, n_items=n_items, max_history=max_history)
    extras = dict(extra_files or {})
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
    _check_known_extras(extras, n_items)

    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"bundle folder already exists: {out} (pass overwrite=True to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        frame.to_parquet(staging / ITEMS_FILE, index=False)
        model_dir = staging / TRITON_DIR / model_name
        (model_dir / TRITON_VERSION).mkdir(parents=True)
        cold_slot = cold_slot_of(extras, n_items, max_history)
        top_k = write_with_top_k(onnx_model, model_dir / TRITON_VERSION / ONNX_FILE, k=triton.top_k, n_items=n_items,
                                 cold_slot=cold_slot)
        cold = cold_slot is not None
        check_onnx_contract(model_dir / TRITON_VERSION / ONNX_FILE, n_items=n_items, max_history=max_history,
                            top_k=top_k, cold=cold)
        (model_dir / "configs").mkdir()
        shape = {"n_items": n_items, "max_history": max_history, "top_k": top_k, "settings": triton, "cold": cold}
        (model_dir / "config.pbtxt").write_text(triton_config_text(model_name, gpu=True, **shape), encoding="utf-8")
        (model_dir / "configs" / f"{CPU_CONFIG_NAME}.pbtxt").write_text(
            triton_config_text(model_name, gpu=False, **shape), encoding="utf-8"
        )
        for name, source in extras.items():
            shutil.copyfile(source, staging / name)
        manifest = {
            "format": BUNDLE_FORMAT,
            "model_name": model_name,
            "version": str(version),
            "n_items": n_items,
            "max_history": int(max_history),
            "inputs": [spec.to_json() for spec in input_specs()],
            "outputs": [spec.to_json() for spec in output_specs(n_items, top_k, cold=cold)],
            "top_k": top_k,
            "triton": {
                "repository": TRITON_DIR,
                "model_version": TRITON_VERSION,
                "cpu_config_name": CPU_CONFIG_NAME,
                "max_batch_size": triton.max_batch_size,
            },
            "extra_files": sorted(extras),
            "lineage": dict(lineage),
            "files": hash_bundle_files(staging),
        }
        _write_json_durably(staging / MANIFEST_FILE, manifest)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote serving bundle %s (model %s v%s, %d items)", out, model_name, version, n_items)
    return manifest


def with_popularity(items: pd.DataFrame, positives: pd.DataFrame) -> pd.DataFrame:
    """items plus a ``popularity`` column: the share of positive events (item_idx column) on each item."""
    import numpy as np

    counts = np.bincount(positives["item_idx"].to_numpy(dtype=np.int64), minlength=len(items))[: len(items)]
    total = max(int(counts.sum()), 1)
    frame = items.copy()
    frame["popularity"] = counts.astype(np.float64) / total
    return frame


# --------------------------------------------------------------------------------------------- verifying


def verify_bundle(path: Path) -> dict[str, Any]:
    """Re-hash every file against manifest.json; return the manifest, raise BundleError on any difference.

    Files missing, changed, or present but not listed in the manifest all fail the check.
    """
    root = Path(path)
    manifest = read_manifest(root)
    listed: dict[str, str] = manifest.get("files", {})
    problems = bundle_file_problems(root, listed)
    if problems:
        raise BundleError(f"bundle {root} failed verification: " + "; ".join(problems))
    return manifest


def read_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a bundle folder, checked for the fields the runtime reads."""
    path = Path(root) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"not a serving bundle (no {MANIFEST_FILE}): {root}") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"unreadable manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: unknown bundle format (expected {BUNDLE_FORMAT})")
    for key in ("model_name", "version", "n_items", "max_history", "inputs", "outputs", "files"):
        if key not in manifest:
            raise BundleError(f"{path}: field {key!r} missing")
    return manifest


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
        [str(c) for c in cats] if isinstance(cats, (list, tuple, np.ndarray)) else [] for cats in frame["categories"]
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
