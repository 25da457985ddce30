"""``:explain`` answers and V2 ``model_version`` is honoured, not 501 (issue 11, finding 10)."""

import pytest
from serving_helpers import make_server, transformer_server
from test_predictor import infer_body

from hyperrec.online.settings import HttpGuardConfig
from hyperrec.serving.predictor import OnnxRankerModel


@pytest.fixture
def transformer(demo_bundle, serving_settings):
    return transformer_server(demo_bundle, serving_settings())


@pytest.fixture
def predictor(demo_bundle):
    model = OnnxRankerModel("ranker", demo_bundle)
    model.load()
    return make_server([model], http=HttpGuardConfig())


def test_explain_answers_with_the_reasons_even_when_the_request_does_not_ask(transformer):
    body = {"user_id": "u1", "history": ["m00001", "m00002"], "k": 3, "explain": False}
    response = transformer.post("/v1/models/ranker:explain", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["explanation_method"] in ("embedding_cosine", "category_overlap")
    assert len(answer["recommendations"]) == 3
    assert all("because" in rec for rec in answer["recommendations"])
    plain = transformer.post("/v1/models/ranker:predict", json=body).json()
    assert [r["item_id"] for r in plain["recommendations"]] == [
        r["item_id"] for r in answer["recommendations"]
    ]


def test_explain_validates_like_predict(transformer):
    response = transformer.post("/v1/models/ranker:explain", json={"history": ["m00001"]})
    assert response.status_code == 400 and "user_id" in response.json()["error"]


def test_v2_infer_with_the_served_model_version_answers(predictor):
    body = infer_body([[0] * 7 + [3]], [0])
    response = predictor.post("/v2/models/ranker/versions/demo-1/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "demo-1"
    assert predictor.get("/v2/models/ranker/versions/demo-1/ready").status_code == 200
    assert predictor.get("/v2/models/ranker/versions/demo-1").json()["name"] == "ranker"


@pytest.mark.parametrize("path", ["/v2/models/ranker/versions/7/infer", "/v2/models/ranker/versions/7/ready",
                                  "/v2/models/ranker/versions/7"])
def test_an_unknown_model_version_is_404_naming_the_served_one(predictor, path):
    body = infer_body([[0] * 7 + [3]], [0])
    response = predictor.post(path, json=body) if path.endswith("infer") else predictor.get(path)
    assert response.status_code == 404
    assert "demo-1" in response.json()["error"] and "model_version" in response.json()["error"]


def test_the_transformer_knows_its_served_version_too(transformer):
    assert transformer.get("/v2/models/ranker/versions/demo-1/ready").status_code == 200
    assert transformer.get("/v2/models/ranker/versions/other/ready").status_code == 404
