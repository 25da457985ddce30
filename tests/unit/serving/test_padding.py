"""The embedded predictor trims all-padding history columns only where that leaves the answers unchanged."""

from __future__ import annotations

import numpy as np
from serving_helpers import make_server

from hyperrec.serving.padding import padding_is_inert, trim_left_padding
from hyperrec.serving.predictor import OnnxRankerModel


def test_trim_drops_only_the_columns_that_are_padding_in_every_row():
    history = np.array([[0, 0, 0, 5, 6], [0, 0, 2, 0, 7]])
    np.testing.assert_array_equal(trim_left_padding(history), history[:, 2:])
    np.testing.assert_array_equal(trim_left_padding(np.zeros((2, 4), np.int64)), np.zeros((2, 1)))
    assert trim_left_padding(history[:, 2:]).shape == (2, 3)  # nothing left to trim


def test_the_trimmed_predictor_answers_as_the_full_width_graph(demo_bundle):
    import onnxruntime as ort

    model = OnnxRankerModel("ranker", demo_bundle)
    model.load()
    assert model._trim  # noqa: SLF001 - the demo ranker averages valid items: padding is inert
    history = [[0] * 6 + [4, 9], [0] * 7 + [1]]
    body = {"inputs": [{"name": "history", "shape": [2, 8], "datatype": "INT64", "data": sum(history, [])},
                       {"name": "segment", "shape": [2, 1], "datatype": "INT64", "data": [0, 2]}]}
    outputs = {o["name"]: o["data"] for o in make_server([model]).post("/v2/models/ranker/infer", json=body)
               .json()["outputs"]}
    session = ort.InferenceSession(str(demo_bundle / "triton/ranker/1/model.onnx"))
    scores, ids = session.run(
        ["scores", "top_ids"], {"history": np.array(history), "segment": np.array([0, 2])}
    )
    assert outputs["top_ids"] == ids.reshape(-1).tolist()
    np.testing.assert_allclose(outputs["scores"], scores.reshape(-1), atol=1e-6)


def test_a_graph_that_reads_the_padding_is_not_trimmed(tmp_path):
    import onnxruntime as ort
    import torch

    from hyperrec.export.onnx_contract import export_ranker_onnx

    class CountsPadding(torch.nn.Module):
        def forward(self, history, segment):
            pads = (history == 0).sum(1, keepdim=True).float()
            return torch.arange(5).float().unsqueeze(0) * pads + 0.0 * segment.unsqueeze(1).float()

    sample = [torch.zeros((2, 4), dtype=torch.int64), torch.zeros(2, dtype=torch.int64)]
    path = export_ranker_onnx(CountsPadding(), tmp_path / "pads.onnx", sample, dynamo=False)
    assert not padding_is_inert(ort.InferenceSession(str(path)), max_history=8, n_items=5)
