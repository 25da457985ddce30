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

A bundle with a cold slot (``cold_slot.json`` naming at least one item, ``hyperrec.online.cold_items``) also
needs the best cold item, which the top K need not hold; its graph adds::

    history-excluded scores ──► Gather(cold items) ──► ArgMax ──► cold_id INT64 [B, 1]  (item_idx)
                                                              └► cold_score FP32 [B, 1]

The cold item indices are a constant of the graph (ascending, so ArgMax's first-maximum rule breaks ties by
the lower item index, as ``reserve_cold_slot`` does). A row whose cold items are all in its history gets
``cold_score`` −inf. Bundles without a slot, or with an empty one, have no cold outputs: the slot cannot fire.

A slot that chooses by the history's text (``ColdSlot.vectors``) returns *its* item instead, the one
``choose_cold_items`` picks, with that item's score::

    history[:, -window:] ──► Gather(text vectors, pad row 0) ──► ReduceSum ──► MatMul(cold vectors^T)
        ──► −inf where the cold score is −inf (history) ──► ArgMax ──► cold_id, cold_score (−inf: no history)

The window must fit in the encoded history (``window <= max_history``), so the graph reads the same items as
the rule does on the request's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperrec.errors import BundleError
from hyperrec.export.onnx_contract import (
    COLD_ID_OUTPUT,
    COLD_SCORE_OUTPUT,
    HISTORY_INPUT,
    SCORES_OUTPUT,
    TOP_IDS_OUTPUT,
    TOP_SCORES_OUTPUT,
)
from hyperrec.online.cold_items import COLD_SLOT_FILE, COLD_VECTORS_FILE, ColdSlot

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


def has_cold_top(model: Any) -> bool:
    """Whether an ONNX ModelProto already ends in the best-cold-item outputs."""
    return {o.name for o in model.graph.output} >= {COLD_ID_OUTPUT, COLD_SCORE_OUTPUT}


def add_cold_top(model: Any, cold_items: Any, vectors: Any = None, window: int = 20) -> Any:
    """Return ``model`` (with the top-k outputs) with ``cold_id``/``cold_score``: per row the best of
    ``cold_items`` (item_idx) outside the history, ties by the lower index; with ``vectors`` (item text, unit
    rows) the one closest in text to the last ``window`` history items, as ``ColdSlot.vectors`` chooses."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    items = np.unique(np.asarray(cold_items, dtype=np.int64))
    if items.size == 0:
        raise BundleError("the best cold item needs at least one cold item")
    if not has_top_k(model):
        raise BundleError("add the top-k outputs before the cold ones (they share the history exclusion)")
    if has_cold_top(model):
        return model
    graph, p = model.graph, _PREFIX
    graph.initializer.append(numpy_helper.from_array(items, name=p + "cold_items"))
    graph.node.append(
        helper.make_node("Gather", [p + "eligible", p + "cold_items"], [p + "cold_scores"], axis=1)
    )
    if vectors is None:
        graph.node.extend(
            [
                helper.make_node(
                    "ArgMax", [p + "cold_scores"], [p + "cold_pos"], axis=1, keepdims=1, select_last_index=0
                ),
                helper.make_node(
                    "GatherElements", [p + "cold_scores", p + "cold_pos"], [COLD_SCORE_OUTPUT], axis=1
                ),
            ]
        )
    else:
        _add_text_choice(graph, np.asarray(vectors, dtype=np.float32), items, window)
    graph.node.append(
        helper.make_node("Gather", [p + "cold_items", p + "cold_pos"], [COLD_ID_OUTPUT], axis=0)
    )
    graph.output.extend([
        helper.make_tensor_value_info(COLD_ID_OUTPUT, TensorProto.INT64, ["batch", 1]),
        helper.make_tensor_value_info(COLD_SCORE_OUTPUT, TensorProto.FLOAT, ["batch", 1]),
    ])
    onnx.checker.check_model(model)
    return model


def _add_text_choice(graph: Any, vectors: Any, items: Any, window: int) -> None:
    """Nodes from ``cold_scores`` to ``cold_pos`` and ``cold_score`` for a slot choosing by the history's text
    (the sum of the tail's text vectors has the mean's cosine ranking; pads read the zero row)."""
    import numpy as np
    from onnx import helper, numpy_helper

    p = _PREFIX

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name=p + name))
        return p + name

    text = const("text", np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors]))
    cold_t = const("cold_text_t", np.ascontiguousarray(vectors[items].T))
    start, axis = const("window", np.array([-window], np.int64)), const("axis1", np.array([1], np.int64))
    end, ninf = p + "end", p + "ninf"  # from add_top_k
    nothing = const("nothing", np.array(0, np.int64))
    graph.node.extend(
        [
            helper.make_node("Slice", [HISTORY_INPUT, start, end, axis], [p + "tail"]),
            helper.make_node("Gather", [text, p + "tail"], [p + "tail_text"], axis=0),
            helper.make_node("ReduceSum", [p + "tail_text", axis], [p + "user_text"], keepdims=0),
            helper.make_node("MatMul", [p + "user_text", cold_t], [p + "cold_sim"]),
            helper.make_node("IsInf", [p + "cold_scores"], [p + "cold_seen"], detect_positive=0),
            helper.make_node("Where", [p + "cold_seen", ninf, p + "cold_sim"], [p + "cold_pref"]),
            helper.make_node(
                "ArgMax", [p + "cold_pref"], [p + "cold_pos"], axis=1, keepdims=1, select_last_index=0
            ),
            helper.make_node(
                "GatherElements", [p + "cold_scores", p + "cold_pos"], [p + "cold_picked"], axis=1
            ),
            helper.make_node("Greater", [p + "tail", nothing], [p + "tail_known"]),
            helper.make_node("Cast", [p + "tail_known"], [p + "tail_count1"], to=1),
            helper.make_node("ReduceSum", [p + "tail_count1", axis], [p + "tail_count"], keepdims=1),
            helper.make_node("Cast", [p + "tail_count"], [p + "has_history"], to=9),
            helper.make_node("Where", [p + "has_history", p + "cold_picked", ninf], [COLD_SCORE_OUTPUT]),
        ]
    )


def cold_slot_of(extras: Mapping[str, Path], n_items: int, max_history: int) -> ColdSlot | None:
    """The bundle's cold slot (its ``cold_slot.json`` extra, and ``cold_slot_vectors.npy`` for a slot that
    chooses by the history's text) when its graph needs the cold outputs; None without one or with no
    items."""
    if COLD_SLOT_FILE not in extras:
        return None
    slot = ColdSlot.read(extras[COLD_SLOT_FILE], extras.get(COLD_VECTORS_FILE))
    if slot.items.size and int(slot.items[-1]) >= n_items:
        raise BundleError(f"{COLD_SLOT_FILE} names item {int(slot.items[-1])} of a {n_items}-item catalogue")
    if slot.vectors is not None:
        if slot.vectors.shape[0] != n_items:
            raise BundleError(
                f"{COLD_VECTORS_FILE} must be [n_items={n_items}, dim]; got {slot.vectors.shape}"
            )
        if slot.window > max_history:
            raise BundleError(f"the cold slot's window {slot.window} exceeds max_history {max_history}")
    return slot if slot.items.size else None


def write_with_top_k(
    source: Path, target: Path, *, k: int, n_items: int, cold_slot: ColdSlot | None = None
) -> int:
    """Write ``source`` to ``target`` with the top-k outputs (K = min(k, n_items)) and, given ``cold_slot``,
    the cold outputs (its item and score); return that K."""
    import onnx

    depth = min(int(k), int(n_items))
    model = onnx.load(str(source))
    if has_top_k(model):
        depth = int(_declared_k(model))
    else:
        add_top_k(model, depth)
    if cold_slot is not None:
        add_cold_top(model, cold_slot.items, cold_slot.vectors, cold_slot.window)
    onnx.save(model, str(target))
    return depth


def _declared_k(model: Any) -> int:
    output = next(o for o in model.graph.output if o.name == TOP_IDS_OUTPUT)
    dim = output.type.tensor_type.shape.dim[1]
    if not dim.HasField("dim_value"):
        raise BundleError("the graph's top_ids output has no fixed K")
    return int(dim.dim_value)
