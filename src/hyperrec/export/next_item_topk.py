"""Top k inside the ranker graph: ``top_ids`` / ``top_scores`` beside the full ``scores`` output.

Returning 9,742 logits per request and ranking them in the transformer cost more than the model itself
(issue 11: serialising, sending and parsing the vector). The bundle's ONNX graph therefore ends in::

    scores [B, n]  ──► exclude the request's history (−inf) ──► TopK(K) ──► top_scores FP32 [B, K]
                                                                         └► top_ids   INT64 [B, K]  (item_idx)

``scores`` stays an output, so evaluation and any client that needs the whole vector still get it. K is fixed
at export (``serving.predictor.top_k``, at most n_items): Triton needs fixed output dims to batch, and a
request for fewer items takes a prefix. Ties break by the lower item index (ONNX TopK's rule), the same order
as ``hyperrec.online.ranking.top_k_diverse``, so the prefix of the full ranking and the in-graph top k agree.

The exclusion scatters −inf at the history tokens (item_idx + 1; 0 = pad) into ``[pad | scores]`` and drops
the pad column again, so padding needs no special case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperrec.export.bundle import HISTORY_INPUT, SCORES_OUTPUT, TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT
from hyperrec.online.errors import BundleError

_PREFIX = "hyperrec_topk_"


def has_top_k(model: Any) -> bool:
    """Whether an ONNX ModelProto already ends in the top-k outputs."""
    return {o.name for o in model.graph.output} >= {TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT}


def add_top_k(model: Any, k: int) -> Any:
    """Return ``model`` (an ONNX ModelProto with ``history`` → ``scores``) with the top-k outputs appended."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if k < 1:
        raise BundleError(f"top k must be >= 1, got {k}")
    if has_top_k(model):
        return model
    graph = model.graph
    p = _PREFIX

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name=p + name))
        return p + name

    one, k_tensor = const("one", np.array([1], dtype=np.int64)), const("k", np.array([k], dtype=np.int64))
    big = const("end", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    ninf = const("ninf", np.array([-np.inf], dtype=np.float32))
    zero = const("zero", np.array([0.0], dtype=np.float32))
    graph.node.extend([
        helper.make_node("Shape", [HISTORY_INPUT], [p + "hshape"]),
        helper.make_node("Shape", [HISTORY_INPUT], [p + "batch"], start=0, end=1),
        helper.make_node("Concat", [p + "batch", one], [p + "padshape"], axis=0),
        helper.make_node("Expand", [zero, p + "padshape"], [p + "pad"]),
        helper.make_node("Concat", [p + "pad", SCORES_OUTPUT], [p + "wide"], axis=1),
        helper.make_node("Expand", [ninf, p + "hshape"], [p + "minus"]),
        helper.make_node("ScatterElements", [p + "wide", HISTORY_INPUT, p + "minus"], [p + "masked"], axis=1,
                         reduction="min"),
        helper.make_node("Slice", [p + "masked", one, big, one], [p + "eligible"]),
        helper.make_node("TopK", [p + "eligible", k_tensor], [TOP_SCORES_OUTPUT, TOP_IDS_OUTPUT], axis=1,
                         largest=1, sorted=1),
    ])
    graph.output.extend([
        helper.make_tensor_value_info(TOP_IDS_OUTPUT, TensorProto.INT64, ["batch", k]),
        helper.make_tensor_value_info(TOP_SCORES_OUTPUT, TensorProto.FLOAT, ["batch", k]),
    ])
    onnx.checker.check_model(model)
    return model


def write_with_top_k(source: Path, target: Path, *, k: int, n_items: int) -> int:
    """Write ``source`` to ``target`` with the top-k outputs (K = min(k, n_items)); return that K."""
    import onnx

    depth = min(int(k), int(n_items))
    model = onnx.load(str(source))
    if has_top_k(model):
        depth = int(_declared_k(model))
    else:
        add_top_k(model, depth)
    onnx.save(model, str(target))
    return depth


def _declared_k(model: Any) -> int:
    output = next(o for o in model.graph.output if o.name == TOP_IDS_OUTPUT)
    dim = output.type.tensor_type.shape.dim[1]
    if not dim.HasField("dim_value"):
        raise BundleError("the graph's top_ids output has no fixed K")
    return int(dim.dim_value)
