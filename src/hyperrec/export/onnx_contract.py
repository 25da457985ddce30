"""The ranker's ONNX contract: tensor names and specs, the export, and the checks every bundle's graph must
pass.

``hyperrec.export.bundle`` states the contract in words; the bundle builder and the Triton config read the
names from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperrec.errors import BundleError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

ONNX_FILE = "model.onnx"
HISTORY_INPUT, SEGMENT_INPUT, SCORES_OUTPUT = "history", "segment", "scores"
#: In-graph top k (hyperrec.export.next_item_topk): item_idx and score of the best K non-history items.
TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT = "top_ids", "top_scores"
#: Best cold item (hyperrec.online.cold_items): item_idx and score of the best cold item outside the history.
COLD_ID_OUTPUT, COLD_SCORE_OUTPUT = "cold_id", "cold_score"


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
    specs = [
        TensorSpec(SCORES_OUTPUT, "FP32", (-1, n_items)),
        TensorSpec(TOP_IDS_OUTPUT, "INT64", (-1, top_k)),
        TensorSpec(TOP_SCORES_OUTPUT, "FP32", (-1, top_k)),
    ]
    if cold:
        specs += [
            TensorSpec(COLD_ID_OUTPUT, "INT64", (-1, 1)),
            TensorSpec(COLD_SCORE_OUTPUT, "FP32", (-1, 1)),
        ]
    return specs


def check_onnx_contract(
    onnx_path: Path, *, n_items: int, max_history: int, top_k: int | None = None, cold: bool = False
) -> None:
    """Raise BundleError unless the ONNX graph takes history/segment INT64 and gives scores FP32 [B, n_items]
    (and, with ``top_k``, top_ids/top_scores [B, top_k]; with ``cold``, cold_id/cold_score [B, 1])."""
    model = _load_checked(onnx_path)
    _check_signature(model, onnx_path)
    _check_runs(onnx_path, n_items=n_items, max_history=max_history, top_k=top_k, cold=cold)


def _load_checked(onnx_path: Path) -> Any:
    """The parsed model, after onnx's own checker and the opset floor."""
    import onnx

    try:
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types
        raise BundleError(f"{onnx_path} is not a valid ONNX model: {exc}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 17:
        raise BundleError(f"{onnx_path}: opset {opset} < 17")
    return model


def _check_signature(model: Any, onnx_path: Path) -> None:
    """The declared inputs (INT64 history [B, S], segment [B]) and the FP32 scores output."""
    import onnx

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


def _check_runs(onnx_path: Path, *, n_items: int, max_history: int, top_k: int | None, cold: bool) -> None:
    """Run the graph at two batch sizes and two sequence lengths: the axes must really be free."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    top_names = [TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT] if top_k is not None else []
    cold_names = [COLD_ID_OUTPUT, COLD_SCORE_OUTPUT] if cold else []
    for batch, seq in ((1, max_history), (3, max(1, min(max_history, 4)))):
        history = np.zeros((batch, seq), dtype=np.int64)
        history[:, -1] = 1
        feeds = {HISTORY_INPUT: history, SEGMENT_INPUT: np.zeros(batch, dtype=np.int64)}
        try:
            scores, *rest = session.run([SCORES_OUTPUT, *top_names, *cold_names], feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise BundleError(f"{onnx_path}: inference at batch {batch}, seq {seq} failed: {exc}") from None
        if scores.shape != (batch, n_items):
            raise BundleError(
                f"{onnx_path}: scores shape {scores.shape} at batch {batch}; expected ({batch}, {n_items}): "
                "does the model's catalogue match items.parquet?"
            )
        top, best_cold = rest[: len(top_names)], rest[len(top_names):]
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
        raise BundleError(
            f"ONNX output differs from torch by up to {diff:.3g} (> atol {atol:g} + rtol {rtol:g})"
        )
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
        axes = {
            "dynamic_axes": {
                HISTORY_INPUT: {0: "batch", 1: "sequence"},
                SEGMENT_INPUT: {0: "batch"},
                SCORES_OUTPUT: {0: "batch"},
            }
        }
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
