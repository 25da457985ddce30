"""The transformer's consent check and its authenticated /hyperrec/forget and /hyperrec/consent endpoints."""

import pytest
from serving_helpers import SEGMENT_USER, OnnxScorer, fake_pseudonymize, make_server

from hyperrec.data.ledger import ErasureLedger
from hyperrec.online.feedback import read_feedback
from hyperrec.privacy.serving_guard import PrivacyGuard
from hyperrec.serving.server import build_models

URL = "/v1/models/ranker:predict"
FEEDBACK = "/v1/models/feedback:predict"
TOKEN = "s3cret-token"


def client_with_guard(bundle, settings, scorer, folder, token):
    guard = PrivacyGuard(folder, token=token, feedback_dir=settings.feedback_dir, bandit=None,
                         pseudonymize=fake_pseudonymize)
    models = build_models("transformer", bundle, settings, pseudonymize=fake_pseudonymize,
                          scorer_factory=lambda manifest: scorer, privacy=guard)
    for model in models:
        model.load()
    return make_server(models), models


@pytest.fixture
def scorer(demo_bundle):
    return OnnxScorer(None, demo_bundle)


def test_without_a_token_the_endpoints_do_not_exist(demo_bundle, serving_settings, scorer, tmp_path):
    client, _ = client_with_guard(demo_bundle, serving_settings(), scorer, tmp_path / "privacy", token=None)
    response = client.post("/hyperrec/forget", json={"user_ids": ["u1"]})
    assert response.status_code in (404, 405)
    assert not (tmp_path / "privacy").exists()


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_a_missing_or_wrong_token_is_401_and_changes_nothing(
    demo_bundle, serving_settings, scorer, tmp_path, header
):
    client, _ = client_with_guard(demo_bundle, serving_settings(), scorer, tmp_path / "privacy", token=TOKEN)
    headers = {"Authorization": header} if header else {}
    for path, body in (("/hyperrec/forget", {"user_ids": ["u1"]}),
                       ("/hyperrec/consent", {"user_ids": ["u1"], "consent": False})):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert not (tmp_path / "privacy").exists()


def test_forget_clears_the_feedback_log_the_answer_cache_and_the_segment(
    demo_bundle, serving_settings, scorer, tmp_path
):
    settings = serving_settings()
    client, models = client_with_guard(demo_bundle, settings, scorer, tmp_path / "privacy", token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for user in (SEGMENT_USER, "other"):
        answer = client.post(URL, json={"user_id": user, "history": ["m00003"], "k": 3}).json()
        item = answer["recommendations"][0]["item_id"]
        client.post(FEEDBACK, json={"request_id": answer["request_id"], "user_id": user,
                                    "events": [{"type": "click", "item_id": item}]})
    forgotten = fake_pseudonymize(SEGMENT_USER)
    response = client.post("/hyperrec/forget", json={"user_ids": [SEGMENT_USER]}, headers=auth)
    assert response.status_code == 200, response.text
    counts = response.json()
    assert counts["users"] == 1 and counts["cached_answers"] == 1 and counts["segment_entries"] == 1
    assert counts["feedback_lines"] == 4  # 3 impressions + 1 click
    users = {r["user"] for r in read_feedback(settings.feedback_dir).records}
    assert users == {fake_pseudonymize("other")}
    assert ErasureLedger(tmp_path / "privacy" / "erasure_ledger.jsonl").pseudonyms() == {forgotten}
    # The log stays writable after its segment was replaced under the open writer.
    client.post(URL, json={"user_id": "later", "k": 2})
    models[0].journal.flush()
    assert fake_pseudonymize("later") in {r["user"] for r in read_feedback(settings.feedback_dir).records}
    # The bundle's cached segment of the user is gone: a known-segment answer is plain popularity now.
    assert client.post(URL, json={"user_id": SEGMENT_USER, "k": 3}).json()["source"] == "popular"


def test_a_user_without_consent_gets_the_non_personalized_ranking(
    demo_bundle, serving_settings, scorer, tmp_path
):
    client, _ = client_with_guard(demo_bundle, serving_settings(), scorer, tmp_path / "privacy", token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"user_id": SEGMENT_USER, "history": ["m00003", "m00007"], "k": 3}
    assert client.post(URL, json=body).json()["source"] == "model"
    response = client.post(
        "/hyperrec/consent", json={"user_ids": [SEGMENT_USER], "consent": False}, headers=auth
    )
    assert response.status_code == 200, response.text
    calls = len(scorer.calls)
    answer = client.post(URL, json=body).json()
    assert answer["source"] == "popular"  # not the model, not the user's segment
    assert [r["item_id"] for r in answer["recommendations"]] == ["m00000", "m00001", "m00002"]
    assert len(scorer.calls) == calls
    assert client.post(URL, json={**body, "user_id": "someone-else"}).json()["source"] == "model"
    client.post("/hyperrec/consent", json={"user_ids": [SEGMENT_USER], "consent": True}, headers=auth)
    assert client.post(URL, json=body).json()["source"] == "model"


def test_bad_bodies_are_400(demo_bundle, serving_settings, scorer, tmp_path):
    client, _ = client_with_guard(demo_bundle, serving_settings(), scorer, tmp_path / "privacy", token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/hyperrec/forget", json={"user_ids": []}, headers=auth).status_code == 400
    assert client.post("/hyperrec/forget", json={"user_ids": [""]}, headers=auth).status_code == 400
    response = client.post("/hyperrec/consent", json={"user_ids": ["u1"], "consent": "no"}, headers=auth)
    assert response.status_code == 400 and "consent must be true or false" in response.text
