"""The whole online path without a server: model input, rules, fallbacks, explanations."""

import numpy as np

from hyperrec.features import encode_histories, encode_segments


def test_model_input_is_built_by_hyperrec_features(service):
    plan = service.prepare({"user_id": "seg-user", "history": ["a", "zzz", "c", "b", "d", "e"]})
    expected = encode_histories([np.array([0, 2, 1, 3, 4])], 4)
    assert np.array_equal(plan.model_inputs["history"], expected)
    assert np.array_equal(plan.model_inputs["segment"], encode_segments([1]))
    assert plan.unknown_items == ("zzz",)


def test_answer_ranks_model_scores_excluding_seen_items_and_reports_unknown_ids(service):
    plan = service.prepare({"user_id": "u", "history": ["a", "nope"], "k": 3, "request_id": "r1"})
    answer = service.answer(plan, np.array([10.0, 1.0, 5.0, 4.0, 3.0, 2.0], dtype=np.float32))
    assert [r["item_id"] for r in answer["recommendations"]] == ["c", "d", "e"]
    assert answer["recommendations"][0] == {
        "rank": 1, "item_id": "c", "title": "C", "categories": ["x", "y"], "score": 5.0, "propensity": 1.0,
    }
    assert answer["unknown_items"] == ["nope"]
    assert answer["source"] == "model" and answer["degraded"] is False
    assert answer["model"] == {"name": "ranker", "version": "v1"}
    assert answer["request_id"] == "r1"
    # Traceable: which revision answered and which policy chose the slate (the plain ranking: propensity 1).
    assert answer["revision"] == "champion"
    assert answer["policy"] == {
        "name": "ranker",
        "propensity_method": "deterministic",
        "plain_ranking_because": None,
    }


def test_candidates_restrict_the_ranking(service):
    plan = service.prepare({"user_id": "u", "history": ["a"], "candidates": ["b", "f", "ghost"], "k": 5})
    answer = service.answer(plan, np.arange(6, dtype=np.float32))
    assert [r["item_id"] for r in answer["recommendations"]] == ["f", "b"]
    assert answer["unknown_items"] == ["ghost"]


def test_new_user_gets_popular_items_and_a_known_segment_gets_segment_popular_items(service):
    plan = service.prepare({"user_id": "new", "k": 3})
    assert not plan.needs_model
    answer = service.answer(plan, None)
    assert answer["source"] == "popular" and answer["degraded"] is False
    assert [r["item_id"] for r in answer["recommendations"]] == ["f", "d", "e"]
    segment_answer = service.answer(service.prepare({"user_id": "seg-user", "k": 3}), None)
    assert segment_answer["source"] == "segment_popular"
    assert [r["item_id"] for r in segment_answer["recommendations"]] == ["a", "d", "f"]


def test_only_unknown_history_falls_back_to_popular(service):
    plan = service.prepare({"user_id": "u", "history": ["ghost"], "k": 2})
    assert not plan.needs_model
    assert service.answer(plan, None)["unknown_items"] == ["ghost"]


def test_degraded_answer_is_flagged_with_its_reason(service):
    plan = service.prepare({"user_id": "u", "history": ["a"], "k": 2})
    answer = service.answer(plan, None, degraded_reason="predictor_unavailable")
    assert answer["degraded"] is True and answer["degraded_reason"] == "predictor_unavailable"
    assert [r["item_id"] for r in answer["recommendations"]] == ["f", "d"]  # popular, seen item excluded


def test_explanations_use_embeddings_when_present(service):
    plan = service.prepare({"user_id": "u", "history": ["a", "d"], "k": 2, "explain": True})
    answer = service.answer(plan, np.array([0, 5, 4, 0, 0, 0], dtype=np.float32))
    assert answer["explanation_method"] == "embedding_cosine"
    first = answer["recommendations"][0]
    assert first["item_id"] == "b"
    assert [b["item_id"] for b in first["because"]] == ["a", "d"]  # b's embedding is closest to a's
    assert first["because"][0]["similarity"] > first["because"][1]["similarity"]


def test_explanations_fall_back_to_category_overlap_and_say_so(service_factory, catalogue_factory):
    service = service_factory(catalogue_factory(with_embeddings=False))
    plan = service.prepare({"user_id": "u", "history": ["a", "e"], "k": 1, "explain": True})
    answer = service.answer(plan, np.array([0, 0, 0, 0, 0, 9], dtype=np.float32))
    assert answer["explanation_method"] == "category_overlap"
    assert answer["recommendations"][0]["because"] == [
        {"item_id": "e", "title": "E", "similarity": 1.0}, {"item_id": "a", "title": "A", "similarity": 0.0},
    ][: service.settings.explain_top_n]


def test_diversity_cap_applies_to_model_answers(service_factory):
    service = service_factory(max_per_category=1)
    plan = service.prepare({"user_id": "u", "history": ["f"], "k": 3})
    answer = service.answer(plan, np.array([9, 8, 7, 6, 5, 0], dtype=np.float32))
    assert [r["item_id"] for r in answer["recommendations"]] == ["a", "d", "e"]
