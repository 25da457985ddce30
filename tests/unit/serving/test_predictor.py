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
    response = client.post("/v2/models/ranker/infer", json=infer_body([[0] * 7 + [3], [0] * 6 + [1, 2]], [0, 3]))
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("scores", "FP32", [2, 60])
    assert response.json()["model_version"] == "demo-1"
    metadata = client.get("/v2/models/ranker").json()
    assert metadata["inputs"][0] == {"name": "history", "datatype": "INT64", "shape": [-1, -1]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": [{"name": "segment", "shape": [1, 1], "datatype": "INT64", "data": [0]}]}, "'history' is missing"),
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
