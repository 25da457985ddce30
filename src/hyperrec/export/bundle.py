"""The serving bundle: one folder with everything the transformer and the predictor (Triton or embedded) need.

Layout written by :func:`build_bundle`::

    manifest.json                  model name, version, n_items, max_history, tensor specs, lineage, sha256s
    items.parquet                  item_id, title, categories, popularity, item_idx (catalogue order)
    triton/<model>/config.pbtxt    Triton model config for GPUs (onnxruntime_onnx, dynamic batching, KIND_GPU)
    triton/<model>/configs/cpu.pbtxt
                                   the same model on CPUs; Triton picks it with ``--model-config-name=cpu``
    triton/<model>/1/model.onnx    the ranker (version 1 of the Triton repository)
    <extra files>                  optional: item_embeddings.npy, segments.parquet, segment_popularity.parquet

``triton/`` is a ready Triton model repository (``tritonserver --model-repository=<bundle>/triton``).

The ranker contract (the trained next-item model exports to it):

- input ``history`` INT64 [batch, seq]: ``hyperrec.features.encode_histories`` output (left-padded item tokens,
  item_idx + 1, 0 = pad); the transformer always sends ``seq = max_history``, so Triton can batch requests;
- input ``segment`` INT64 [batch]: ``hyperrec.features.encode_segments`` output;
- output ``scores`` FP32 [batch, n_items] in catalogue order (items.parquet item_idx);
- outputs ``top_ids`` INT64 / ``top_scores`` FP32 [batch, K]: the best K items that are not in the history,
  best first (``hyperrec.export.next_item_topk`` appends them; K = ``manifest["top_k"]``);
- outputs ``cold_id`` INT64 / ``cold_score`` FP32 [batch, 1], only in bundles with a non-empty ``cold_slot.json``:
  the best cold item outside the history (what the cold slot needs beside the top K; ``has_cold_outputs``).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperrec.hashing import sha256_file
from hyperrec.online.errors import BundleError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "hyperrec-serving-bundle/1"
MANIFEST_FILE = "manifest.json"
ITEMS_FILE = "items.parquet"
TRITON_DIR = "triton"
TRITON_VERSION = "1"
ONNX_FILE = "model.onnx"
CPU_CONFIG_NAME = "cpu"
#: Optional files with a meaning to the runtime; other extra names are carried and checksummed only.
ITEM_EMBEDDINGS_FILE = "item_embeddings.npy"
SEGMENTS_FILE = "segments.parquet"
SEGMENT_POPULARITY_FILE = "segment_popularity.parquet"
ITEM_COLUMNS = ("item_id", "title", "categories", "popularity", "item_idx")
HISTORY_INPUT, SEGMENT_INPUT, SCORES_OUTPUT = "history", "segment", "scores"
#: In-graph top k (hyperrec.export.next_item_topk): item_idx and score of the best K non-history items.
TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT = "top_ids", "top_scores"
#: Best cold item (hyperrec.online.cold_items): item_idx and score of the best cold item outside the history.
COLD_ID_OUTPUT, COLD_SCORE_OUTPUT = "cold_id", "cold_score"


def to_wire(name: str, array: np.ndarray) -> np.ndarray:
    """The tensor as a V2 client sends it: Triton's config declares ``segment`` with dims [1] reshaped to []
    for the model, so on the wire it is [B, 1] while the ONNX model sees [B]."""
    return array.reshape(-1, 1) if name == SEGMENT_INPUT else array
_RESERVED = {MANIFEST_FILE, ITEMS_FILE, TRITON_DIR}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class TensorSpec:
    """One V2 tensor: name, datatype (V2 spelling) and shape with -1 for a free axis."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def input_specs() -> list[TensorSpec]:
    """The ranker's inputs (the ONNX graph's shapes: batch and sequence axes free)."""
    return [TensorSpec(HISTORY_INPUT, "INT64", (-1, -1)), TensorSpec(SEGMENT_INPUT, "INT64", (-1,))]


def output_specs(n_items: int, top_k: int, *, cold: bool = False) -> list[TensorSpec]:
    """The ranker's outputs for a catalogue of ``n_items``, an in-graph top ``top_k`` and (``cold``) the best
    cold item."""
    specs = [TensorSpec(SCORES_OUTPUT, "FP32", (-1, n_items)), TensorSpec(TOP_IDS_OUTPUT, "INT64", (-1, top_k)),
             TensorSpec(TOP_SCORES_OUTPUT, "FP32", (-1, top_k))]
    if cold:
        specs += [TensorSpec(COLD_ID_OUTPUT, "INT64", (-1, 1)), TensorSpec(COLD_SCORE_OUTPUT, "FP32", (-1, 1))]
    return specs


def has_cold_outputs(manifest: Mapping[str, Any]) -> bool:
    """Whether the bundle's graph returns the best cold item (``cold_id``/``cold_score``)."""
    return COLD_ID_OUTPUT in {spec.get("name") for spec in manifest.get("outputs", [])}


@dataclass(frozen=True)
class TritonSettings:
    """Scheduling knobs written into config.pbtxt."""

    max_batch_size: int = 64
    preferred_batch_sizes: tuple[int, ...] = (8, 16, 32)
    max_queue_delay_us: int = 2000
    gpu_instances: int = 1
    cpu_instances: int = 2
    #: Depth of the in-graph top k (clamped to n_items): the most items one answer can take from the predictor.
    top_k: int = 100

    @classmethod
    def from_predictor(cls, settings: Any) -> TritonSettings:
        """The scheduling knobs of ``serving.predictor`` (a PredictorSettings), so Triton and the embedded
        predictor batch alike; preferred batch sizes above max_batch_size are dropped."""
        preferred = tuple(size for size in cls.preferred_batch_sizes if size <= settings.max_batch_size)
        return cls(max_batch_size=settings.max_batch_size, preferred_batch_sizes=preferred,
                   max_queue_delay_us=settings.max_queue_delay_us, top_k=settings.top_k)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if any(size < 1 or size > self.max_batch_size for size in self.preferred_batch_sizes):
            raise ValueError("preferred batch sizes must lie in 1..max_batch_size")
        if self.max_queue_delay_us < 0 or self.gpu_instances < 1 or self.cpu_instances < 1:
            raise ValueError("max_queue_delay_us must be >= 0 and instance counts >= 1")
        if self.top_k < 1:
            raise ValueError("top_k must be >= 1")


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
    from hyperrec.export.next_item_topk import cold_items_of, write_with_top_k  # imports this module

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
        cold_items = cold_items_of(extras, n_items)
        top_k = write_with_top_k(onnx_model, model_dir / TRITON_VERSION / ONNX_FILE, k=triton.top_k, n_items=n_items,
                                 cold_items=cold_items)
        cold = cold_items is not None
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
            "files": _hash_tree(staging),
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


def triton_config_text(
    model_name: str, *, n_items: int, max_history: int, settings: TritonSettings, gpu: bool, top_k: int,
    cold: bool = False,
) -> str:
    """config.pbtxt for the ranker, built as a ``ModelConfig`` protobuf (so it is valid by construction)."""
    from google.protobuf import text_format

    mc = model_config_pb2()
    config = mc.ModelConfig(
        name=model_name,
        platform="onnxruntime_onnx",
        max_batch_size=settings.max_batch_size,
        default_model_filename=ONNX_FILE,
    )
    # With max_batch_size > 0, dims leave the batch axis out. The transformer always pads histories to
    # max_history, so the sequence axis is exact and Triton's dynamic batcher can stack requests.
    config.input.add(name=HISTORY_INPUT, data_type=mc.TYPE_INT64, dims=[max_history])
    segment = config.input.add(name=SEGMENT_INPUT, data_type=mc.TYPE_INT64, dims=[1])
    segment.reshape.SetInParent()  # the model sees [batch], not [batch, 1]
    config.output.add(name=SCORES_OUTPUT, data_type=mc.TYPE_FP32, dims=[n_items])
    config.output.add(name=TOP_IDS_OUTPUT, data_type=mc.TYPE_INT64, dims=[top_k])
    config.output.add(name=TOP_SCORES_OUTPUT, data_type=mc.TYPE_FP32, dims=[top_k])
    if cold:
        config.output.add(name=COLD_ID_OUTPUT, data_type=mc.TYPE_INT64, dims=[1])
        config.output.add(name=COLD_SCORE_OUTPUT, data_type=mc.TYPE_FP32, dims=[1])
    config.dynamic_batching.preferred_batch_size.extend(settings.preferred_batch_sizes)
    config.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
    config.instance_group.add(
        count=settings.gpu_instances if gpu else settings.cpu_instances,
        kind=mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU,
    )
    config.version_policy.latest.num_versions = 1
    header = (
        f"# Triton model config of {model_name} ({'GPU' if gpu else 'CPU'}), generated by "
        "hyperrec.export.bundle; do not edit by hand.\n"
    )
    return header + text_format.MessageToString(config)


def parse_triton_config(path: Path) -> Any:
    """Parse a config.pbtxt into tritonclient's ``model_config_pb2.ModelConfig`` (raises BundleError)."""
    from google.protobuf import text_format

    mc = model_config_pb2()
    try:
        return text_format.Parse(Path(path).read_text(encoding="utf-8"), mc.ModelConfig())
    except (OSError, text_format.ParseError) as exc:
        raise BundleError(f"invalid Triton config {path}: {exc}") from None


def model_config_pb2() -> Any:
    """tritonclient's ``model_config_pb2`` without importing ``tritonclient.grpc`` itself.

    ``tritonclient.grpc`` registers the V2 service protos, which clash with KServe's copy of them in one
    process ("duplicate symbol 'inference.ServerLiveRequest'", kserve/kserve#3099); model_config.proto
    alone does not, so it is loaded from its file under its usual module name.
    """
    import importlib.util
    import sys

    name = "tritonclient.grpc.model_config_pb2"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("tritonclient")
    if package is None or not package.submodule_search_locations:
        raise BundleError("tritonclient is not installed; it is needed to write Triton configs")
    path = Path(next(iter(package.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def check_onnx_contract(
    onnx_path: Path, *, n_items: int, max_history: int, top_k: int | None = None, cold: bool = False
) -> None:
    """Raise BundleError unless the ONNX graph takes history/segment INT64 and gives scores FP32 [B, n_items]
    (and, with ``top_k``, top_ids/top_scores [B, top_k]; with ``cold``, cold_id/cold_score [B, 1])."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types
        raise BundleError(f"{onnx_path} is not a valid ONNX model: {exc}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 17:
        raise BundleError(f"{onnx_path}: opset {opset} < 17")
    int64, fp32 = onnx.TensorProto.INT64, onnx.TensorProto.FLOAT
    inputs = {i.name: i for i in model.graph.input}
    outputs = {o.name: o for o in model.graph.output}
    for name, rank in ((HISTORY_INPUT, 2), (SEGMENT_INPUT, 1)):
        if name not in inputs:
            raise BundleError(f"{onnx_path}: input {name!r} missing (has {sorted(inputs)})")
        tensor = inputs[name].type.tensor_type
        if tensor.elem_type != int64 or len(tensor.shape.dim) != rank:
            raise BundleError(f"{onnx_path}: input {name!r} must be INT64 of rank {rank}")
    if SCORES_OUTPUT not in outputs:
        raise BundleError(f"{onnx_path}: output {SCORES_OUTPUT!r} missing (has {sorted(outputs)})")
    if outputs[SCORES_OUTPUT].type.tensor_type.elem_type != fp32:
        raise BundleError(f"{onnx_path}: output {SCORES_OUTPUT!r} must be FP32")
    # Run it once at two batch sizes and two sequence lengths: the axes must really be free.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch, seq in ((1, max_history), (3, max(1, min(max_history, 4)))):
        history = np.zeros((batch, seq), dtype=np.int64)
        history[:, -1] = 1
        feeds = {HISTORY_INPUT: history, SEGMENT_INPUT: np.zeros(batch, dtype=np.int64)}
        names = [SCORES_OUTPUT] + ([TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT] if top_k is not None else [])
        cold_names = [COLD_ID_OUTPUT, COLD_SCORE_OUTPUT] if cold else []
        try:
            scores, *top = session.run(names + cold_names, feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise BundleError(f"{onnx_path}: inference at batch {batch}, seq {seq} failed: {exc}") from None
        if scores.shape != (batch, n_items):
            raise BundleError(
                f"{onnx_path}: scores shape {scores.shape} at batch {batch}; expected ({batch}, {n_items}): "
                "does the model's catalogue match items.parquet?"
            )
        top, best_cold = top[: len(top) - len(cold_names)], top[len(top) - len(cold_names):]
        if any(array.shape != (batch, top_k) for array in top):
            raise BundleError(f"{onnx_path}: top-k outputs must have shape ({batch}, {top_k})")
        if any(array.shape != (batch, 1) for array in best_cold):
            raise BundleError(f"{onnx_path}: cold outputs must have shape ({batch}, 1)")


def check_onnx_matches_torch(
    torch_module: Any,
    onnx_path: Path,
    sample_inputs: Mapping[str, np.ndarray],
    atol: float = 1e-4,
    rtol: float = 1e-6,
) -> float:
    """Run both on the same inputs; return the largest absolute difference; raise BundleError where
    ``|onnx - torch| > atol + rtol * |torch|``.

    The relative term matters only for large scores: a ranker that pushes history items down by a constant
    offset (-1e4) holds them at a float32 resolution of ~1e-3, which no two runtimes can reproduce to 1e-4.
    ``sample_inputs`` maps ONNX input names to arrays in the module's positional-argument order.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    arrays = {name: np.ascontiguousarray(value) for name, value in sample_inputs.items()}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run([SCORES_OUTPUT], arrays)
    was_training = bool(getattr(torch_module, "training", False))
    torch_module.eval()
    try:
        with torch.no_grad():
            torch_out = torch_module(*[torch.from_numpy(a) for a in arrays.values()])
    finally:
        torch_module.train(was_training)
    torch_np = torch_out.detach().cpu().numpy()
    if torch_np.shape != onnx_out.shape:
        raise BundleError(f"shape mismatch: torch {torch_np.shape} vs ONNX {onnx_out.shape}")
    expected, actual = torch_np.astype(np.float64), onnx_out.astype(np.float64)
    gap = np.abs(expected - actual)
    diff = float(gap.max()) if gap.size else 0.0
    if not np.all(gap <= atol + rtol * np.abs(expected)):
        raise BundleError(f"ONNX output differs from torch by up to {diff:.3g} (> atol {atol:g} + rtol {rtol:g})")
    return diff


def export_ranker_onnx(
    torch_module: Any, out: Path, sample_inputs: Sequence[Any], *, opset: int = 18, dynamo: bool = True,
    external_data: bool = False,
) -> Path:
    """Export a (history, segment) -> scores module to the contract, with free batch and sequence axes.

    ``external_data`` keeps weights beside the graph (needed above 2 GB; the bundle then must carry the
    weight file too, which build_bundle does not do yet).
    """
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch_module.eval()
    if dynamo:
        batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
        axes: dict[str, Any] = {"dynamic_shapes": ({0: batch, 1: sequence}, {0: batch})}
    else:
        axes = {"dynamic_axes": {
            HISTORY_INPUT: {0: "batch", 1: "sequence"}, SEGMENT_INPUT: {0: "batch"}, SCORES_OUTPUT: {0: "batch"},
        }}
    torch.onnx.export(
        torch_module,
        tuple(sample_inputs),
        str(out),
        input_names=[HISTORY_INPUT, SEGMENT_INPUT],
        output_names=[SCORES_OUTPUT],
        opset_version=opset,
        dynamo=dynamo,
        external_data=external_data,
        verbose=False,
        **axes,
    )
    return out


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
    actual = _hash_tree(root, exclude={MANIFEST_FILE})
    problems = [f"missing: {name}" for name in sorted(set(listed) - set(actual))]
    problems += [f"not in manifest: {name}" for name in sorted(set(actual) - set(listed))]
    problems += [
        f"sha256 mismatch: {name}" for name in sorted(set(listed) & set(actual)) if listed[name] != actual[name]
    ]
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


def _hash_tree(root: Path, exclude: set[str] | None = None) -> dict[str, str]:
    exclude = exclude or set()
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() not in exclude
    }


def _write_json_durably(path: Path, payload: Mapping[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
