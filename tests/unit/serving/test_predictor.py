"""The embedded V2 predictor, in-process through KServe's REST app."""

import pytest
from serving_helpers import make_server

from hyperrec.serving.predictor import OnnxRankerModel


def infer_body(history, segment, shape=None, datatype="INT64"):
    return {"inputs": [
        {"name": "history", "shape": shape or [len(history), len(history[0])], "datatype": datatype,
         "data": [t for row in history for t in row]},
        {"name": "segment", "shape": [len(segment), 1], "datatype": "INT64", "data": segment},
    ]}


@pytest.fixture
def predictor(demo_bundle):
    model = OnnxRankerModel("ranker", demo_bundle)
    model.load()
    return model


def test_v2_infer_returns_fp32_scores_over_the_catalogue(predictor):
    client = make_server([predictor])
    body = {**infer_body([[0] * 7 + [3], [0] * 6 + [1, 2]], [0, 3]), "outputs": [{"name": "scores"}]}
    response = client.post("/v2/models/ranker/infer", json=body)
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("scores", "FP32", [2, 60])
    assert response.json()["model_version"] == "demo-1"
    metadata = client.get("/v2/models/ranker").json()
    assert metadata["inputs"][0] == {"name": "history", "datatype": "INT64", "shape": [-1, -1]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"inputs": [{"name": "segment", "shape": [1, 1], "datatype": "INT64", "data": [0]}]},
            "'history' is missing",
        ),
        (infer_body([[0, 1]], [0], datatype="FP32"), "must be INT64"),
        (infer_body([[0, 1]], [0], shape=[2]), "must have rank 2"),
        (infer_body([[0, 61]], [0]), "must lie in 0..60"),
        (infer_body([[0, 1], [0, 2]], [0]), "same non-zero batch"),
        (infer_body([[0, 1]], [-1]), "segment tokens must be >= 0"),
        (infer_body([[0, 1]], [99]), "segment out of range"),
    ],
)
def test_bad_tensors_are_400_with_a_message(predictor, body, message):
    response = make_server([predictor]).post("/v2/models/ranker/infer", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_v1_payloads_are_400(predictor):
    response = make_server([predictor]).post("/v1/models/ranker:predict", json={"instances": [[1]]})
    assert response.status_code == 400 and "V2 protocol" in response.json()["error"]


def test_503_until_the_bundle_is_loaded(demo_bundle):
    model = OnnxRankerModel("ranker", demo_bundle)
    client = make_server([model])
    assert client.get("/v2/models/ranker/ready").status_code == 503
    assert client.post("/v2/models/ranker/infer", json=infer_body([[1]], [0])).status_code == 503
    model.load()
    assert client.get("/v2/models/ranker/ready").status_code == 200
    assert client.post("/v2/models/ranker/infer", json=infer_body([[1]], [0])).status_code == 200


def test_without_named_outputs_all_come_back_like_triton_and_top_k_excludes_the_history(predictor):
    response = make_server([predictor]).post(
        "/v2/models/ranker/infer", json=infer_body([[0] * 6 + [4, 9]], [0])
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert {name: (o["datatype"], o["shape"]) for name, o in outputs.items()} == {
        "scores": ("FP32", [1, 60]), "top_ids": ("INT64", [1, 60]), "top_scores": ("FP32", [1, 60])}
    scores = outputs["scores"]["data"]
    ids = outputs["top_ids"]["data"]
    assert {3, 8} == set(ids[-2:])  # the history (tokens 4 and 9 = items 3 and 8) sinks to -inf
    assert ids[:10] == sorted(set(range(60)) - {3, 8}, key=lambda i: (-scores[i], i))[:10]


def test_only_the_named_outputs_are_returned(predictor):
    body = {**infer_body([[0, 0, 1]], [0]), "outputs": [{"name": "top_ids"}, {"name": "top_scores"}]}
    response = make_server([predictor]).post("/v2/models/ranker/infer", json=body)
    assert [o["name"] for o in response.json()["outputs"]] == ["top_ids", "top_scores"]
    body["outputs"] = [{"name": "logits"}]
    response = make_server([predictor]).post("/v2/models/ranker/infer", json=body)
    assert response.status_code == 400 and "unknown output" in response.json()["error"]


def test_a_batch_over_max_batch_size_is_a_400_before_any_inference(predictor):
    rows = predictor.max_batch_size + 1
    response = make_server([predictor]).post(
        "/v2/models/ranker/infer", json=infer_body([[0, 1]] * rows, [0] * rows)
    )
    assert response.status_code == 400
    assert f"exceeds the model's max_batch_size {predictor.max_batch_size}" in response.json()["error"]
    assert predictor.max_batch_size == 64  # the bundle's Triton config


def test_the_onnxruntime_session_is_tuned_from_settings():
    import onnxruntime as ort

    from hyperrec.online.predictor_settings import PredictorSettings
    from hyperrec.serving.predictor import session_options

    options = session_options(PredictorSettings(intra_op_threads=2, inter_op_threads=1))
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    spinning = session_options(PredictorSettings(allow_spinning=True))
    assert spinning.get_session_config_entry("session.intra_op.allow_spinning") == "1"
