"""The in-graph top k: the same items, in the same order, as an argsort of the full logits with the history
excluded; ties by the lower item index; declared in the bundle's manifest and Triton config."""

from __future__ import annotations

import numpy as np

from hyperrec.export.triton_config import parse_triton_config

N_ITEMS, MAX_HISTORY, TOP_K = 60, 8, 10  # the topk_bundle fixture


def reference_top(scores: np.ndarray, history: np.ndarray, k: int) -> np.ndarray:
    """Argsort of the logits, history items (tokens - 1) excluded, ties by the lower item index."""
    masked = scores.astype(np.float64).copy()
    seen = history[history > 0] - 1
    masked[seen] = -np.inf
    order = np.lexsort((np.arange(masked.size), -masked))
    return order[:k]


def test_top_ids_are_the_argsort_of_the_logits_without_the_history(topk_bundle):
    import onnxruntime as ort

    session = ort.InferenceSession(str(topk_bundle / "triton/ranker/1/model.onnx"))
    rng = np.random.default_rng(7)
    history = np.zeros((12, MAX_HISTORY), dtype=np.int64)
    for row in range(12):  # left-padded histories of 1..8 items, some with repeats
        length = 1 + row % MAX_HISTORY
        history[row, MAX_HISTORY - length:] = rng.integers(1, N_ITEMS + 1, size=length)
    segment = rng.integers(0, 4, size=12).astype(np.int64)
    scores, ids, top = session.run(
        ["scores", "top_ids", "top_scores"], {"history": history, "segment": segment}
    )
    assert ids.shape == top.shape == (12, TOP_K) and ids.dtype == np.int64
    for row in range(12):
        np.testing.assert_array_equal(ids[row], reference_top(scores[row], history[row], TOP_K))
        np.testing.assert_array_equal(top[row], scores[row, ids[row]])
        assert not set(ids[row].tolist()) & set((history[row][history[row] > 0] - 1).tolist())


def test_ties_break_by_the_lower_item_index(tmp_path):
    import onnx
    import onnxruntime as ort
    import torch

    from hyperrec.export.next_item_topk import add_top_k
    from hyperrec.export.onnx_contract import export_ranker_onnx

    class Tied(torch.nn.Module):
        """Scores 0, 1, 2, 0, 1, 2, ...: every score shared by a third of the catalogue."""

        def forward(self, history, segment):
            base = (torch.arange(12) % 3).float()
            return base.unsqueeze(0) + 0.0 * (history.sum(1, keepdim=True) + segment.unsqueeze(1)).float()

    sample = [torch.zeros((2, 4), dtype=torch.int64), torch.zeros(2, dtype=torch.int64)]
    path = export_ranker_onnx(Tied(), tmp_path / "tied.onnx", sample, dynamo=False)
    model = add_top_k(onnx.load(str(path)), 6)
    session = ort.InferenceSession(model.SerializeToString())
    history = np.array([[0, 0, 0, 3], [0, 0, 0, 0]], dtype=np.int64)  # row 0 has seen item 2 (token 3)
    ids, top = session.run(["top_ids", "top_scores"], {"history": history, "segment": np.zeros(2, np.int64)})
    assert ids[0].tolist() == [5, 8, 11, 1, 4, 7]  # item 2 (score 2) excluded; 2s by index, then 1s by index
    assert ids[1].tolist() == [2, 5, 8, 11, 1, 4]
    assert top[1].tolist() == [2, 2, 2, 2, 1, 1]


def test_manifest_and_triton_config_declare_the_top_k_outputs_batching_and_instances(topk_bundle):
    import json

    manifest = json.loads((topk_bundle / "manifest.json").read_text())
    assert manifest["top_k"] == TOP_K
    assert {o["name"]: o["shape"] for o in manifest["outputs"]} == {
        "scores": [-1, N_ITEMS], "top_ids": [-1, TOP_K], "top_scores": [-1, TOP_K]}
    for path, kind in (("config.pbtxt", "KIND_GPU"), ("configs/cpu.pbtxt", "KIND_CPU")):
        config = parse_triton_config(topk_bundle / "triton/ranker" / path)
        outputs = {o.name: list(o.dims) for o in config.output}
        assert outputs == {"scores": [N_ITEMS], "top_ids": [TOP_K], "top_scores": [TOP_K]}
        assert config.max_batch_size == 16
        assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
        assert config.dynamic_batching.max_queue_delay_microseconds > 0
        (group,) = config.instance_group
        assert type(group).Kind.Name(group.kind) == kind and group.count >= 1


def test_top_k_depth_is_clamped_to_the_catalogue(demo_bundle):
    import json

    assert (
        json.loads((demo_bundle / "manifest.json").read_text())["top_k"] == N_ITEMS
    )  # default 100 > 60 items


def test_cold_outputs_are_the_argmax_over_the_cold_items_without_the_history(cold_topk_bundle):
    import onnxruntime as ort
    from serving_helpers import COLD_ITEMS

    session = ort.InferenceSession(str(cold_topk_bundle / "triton/ranker/1/model.onnx"))
    rng = np.random.default_rng(11)
    history = np.zeros((40, MAX_HISTORY), dtype=np.int64)
    for row in range(
        40
    ):  # histories of 1..8 items; every other one holds cold items, row 0 all but one of them
        length = 1 + row % MAX_HISTORY
        history[row, MAX_HISTORY - length:] = rng.integers(1, N_ITEMS + 1, size=length)
        if row % 2:
            history[row, -1] = 1 + rng.choice(COLD_ITEMS)
    history[[0, 2]] = 0
    history[0, MAX_HISTORY - len(COLD_ITEMS) + 1 :] = 1 + np.array(
        COLD_ITEMS[1:]
    )  # only the first cold item unseen
    history[2, MAX_HISTORY - len(COLD_ITEMS) :] = 1 + np.array(
        COLD_ITEMS
    )  # every cold item seen: none to offer
    segment = rng.integers(0, 4, size=40).astype(np.int64)
    scores, cold_id, cold_score = session.run(["scores", "cold_id", "cold_score"],
                                              {"history": history, "segment": segment})
    assert cold_id.shape == cold_score.shape == (40, 1) and cold_id.dtype == np.int64
    cold = np.array(COLD_ITEMS)
    for row in range(40):
        masked = scores[row].astype(np.float64)
        masked[history[row][history[row] > 0] - 1] = -np.inf
        if row == 2:
            assert cold_score[row, 0] == -np.inf
            continue
        best = int(cold[np.argmax(masked[cold])])  # cold items ascending: ties by the lower index
        assert cold_id[row, 0] == best and cold_score[row, 0] == scores[row, best]
    assert cold_id[0, 0] == COLD_ITEMS[0]


def test_cold_ties_break_by_the_lower_item_index(tmp_path):
    import onnx
    import onnxruntime as ort
    import torch

    from hyperrec.export.next_item_topk import add_cold_top, add_top_k
    from hyperrec.export.onnx_contract import export_ranker_onnx

    class Tied(torch.nn.Module):
        def forward(self, history, segment):
            base = (torch.arange(12) % 3).float()  # 0, 1, 2, 0, 1, 2, ...
            return base.unsqueeze(0) + 0.0 * (history.sum(1, keepdim=True) + segment.unsqueeze(1)).float()

    sample = [torch.zeros((2, 4), dtype=torch.int64), torch.zeros(2, dtype=torch.int64)]
    path = export_ranker_onnx(Tied(), tmp_path / "tied.onnx", sample, dynamo=False)
    model = add_cold_top(add_top_k(onnx.load(str(path)), 3), [11, 4, 8, 5, 7])
    session = ort.InferenceSession(model.SerializeToString())
    history = np.array([[0, 0, 0, 6], [0, 0, 0, 0]], dtype=np.int64)  # row 0 has seen item 5 (token 6)
    ids, score = session.run(
        ["cold_id", "cold_score"], {"history": history, "segment": np.zeros(2, np.int64)}
    )
    assert ids[:, 0].tolist() == [8, 5]  # scores 2: items 5, 8, 11; row 0 has seen 5
    assert score[:, 0].tolist() == [2.0, 2.0]


def test_manifest_and_triton_configs_declare_the_cold_outputs_only_with_a_cold_slot(
    cold_topk_bundle, topk_bundle
):
    import json

    from hyperrec.export.bundle import has_cold_outputs

    for bundle, cold in ((cold_topk_bundle, True), (topk_bundle, False)):
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert has_cold_outputs(manifest) is cold
        shapes = {o["name"]: o["shape"] for o in manifest["outputs"]}
        assert (shapes.get("cold_id"), shapes.get("cold_score")) == (
            ([-1, 1], [-1, 1]) if cold else (None, None)
        )
        for path in ("config.pbtxt", "configs/cpu.pbtxt"):
            config = parse_triton_config(bundle / "triton/ranker" / path)
            types = {o.name: (list(o.dims), type(o).DESCRIPTOR.fields_by_name["data_type"].enum_type
                              .values_by_number[o.data_type].name) for o in config.output}
            expected = {"cold_id": ([1], "TYPE_INT64"), "cold_score": ([1], "TYPE_FP32")} if cold else {}
            assert {name: types[name] for name in types if name.startswith("cold")} == expected


def test_a_text_choosing_slot_returns_the_rules_choice_and_its_score(tmp_path):
    """With ColdSlot.vectors the graph's cold_id is choose_cold_items's pick on the same history (the tail's
    summed text against the cold items', history excluded), cold_score its score; no history: -inf."""
    import onnxruntime as ort
    from serving_helpers import COLD_ITEMS

    from hyperrec.export.tiny import build_demo_bundle
    from hyperrec.online.cold_items import ColdSlot, choose_cold_items

    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(N_ITEMS, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    slot = ColdSlot(np.array(COLD_ITEMS), position=4, offset=1.0, vectors=vectors, window=3)
    build_demo_bundle(
        tmp_path / "ranker", n_items=N_ITEMS, max_history=MAX_HISTORY, dynamo=False, cold_slot=slot
    )
    session = ort.InferenceSession(str(tmp_path / "ranker/triton/ranker/1/model.onnx"))
    history = np.zeros((30, MAX_HISTORY), dtype=np.int64)
    for row in range(1, 30):  # row 0: no history; odd rows end in a cold item
        length = 1 + row % MAX_HISTORY
        history[row, MAX_HISTORY - length:] = rng.integers(1, N_ITEMS + 1, size=length)
        if row % 2:
            history[row, -1] = 1 + rng.choice(COLD_ITEMS)
    scores, cold_id, cold_score = session.run(["scores", "cold_id", "cold_score"],
                                              {"history": history, "segment": np.zeros(30, np.int64)})
    items = [row[row > 0] - 1 for row in history]
    allowed = np.ones_like(scores, dtype=bool)
    for row, seen in enumerate(items):
        allowed[row, seen] = False
    chosen = choose_cold_items(scores, slot, allowed, items)
    assert chosen[0] == -1 and cold_score[0, 0] == -np.inf
    np.testing.assert_array_equal(cold_id[1:, 0], chosen[1:])
    np.testing.assert_array_equal(cold_score[1:, 0], scores[np.arange(1, 30), chosen[1:]])
    best_scored = choose_cold_items(scores, ColdSlot(np.array(COLD_ITEMS), 4, 1.0), allowed)
    assert (best_scored[1:] != chosen[1:]).any()  # the text choice is not the best-scored item
