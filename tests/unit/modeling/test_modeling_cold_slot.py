"""Fitting the cold-item slot on validation, and the model scoring (evaluation) through the same rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_modeling_next_item import N_ITEMS, accuracy_at_1, small_settings, text_embeddings

from hyperrec.modeling.cold_items import ColdSlotSettings, fit_offset, slot_gaps, text_vectors
from hyperrec.modeling.next_item import NextItemRecommender
from hyperrec.models.base import ScoringBatch
from hyperrec.online.cold_items import reserve_cold_slot


def test_gaps_are_what_the_best_cold_item_lacks_to_reach_the_warm_item_at_the_slot():
    scores = np.array([[5.0, 4.0, 3.0, 1.0, 0.5],    # 2nd warm 4.0, best cold 1.0: needs 3.0
                       [5.0, 4.0, 3.0, 4.5, 0.0]])   # cold 4.5 already ranks 2nd: never needs to fire
    cold = np.array([False, False, False, True, True])
    np.testing.assert_array_equal(slot_gaps(scores, cold, position=2), [3.0, -np.inf])
    np.testing.assert_array_equal(slot_gaps(scores, cold, position=4), [np.inf, np.inf])  # 3 warm items only


def test_the_offset_fires_for_the_most_users_within_the_budget_and_no_user_sits_on_its_boundary():
    gaps = np.array([0.5, 1.0, 2.0, np.inf, -np.inf])
    base = np.array([0.5, 0.3, 0.4, 0.2, 0.1])     # mean 0.3
    fired = np.array([0.5, 0.0, 0.4, 0.2, 0.1])    # firing at gap 1.0 costs 0.3 / 5 = 0.06 = 20 %
    assert fit_offset(gaps, base, fired, max_cost=0.1) == 0.75  # fires at 0.5, halfway to the next gap 1.0
    assert fit_offset(gaps, base, fired, max_cost=0.25) == 2.002  # past the last finite gap, with a margin
    fired[0] = 0.0                                  # now the first firing alone costs 0.5 / 5 = 0.1 = 33 %
    assert fit_offset(gaps, base, fired, max_cost=0.05) == -np.inf
    # A gain for one user does not pay for another's loss: the budget bounds what the slot costs.
    assert fit_offset(np.array([1.0, 2.0]), np.array([0.5, 0.5]), np.array([0.4, 1.0]), 0.05) == -np.inf
    # Users with equal gaps fire together: a tie that breaks the budget is not split.
    assert fit_offset(np.array([1.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 0.0]), 0.1) == -np.inf


def test_gaps_follow_the_chosen_cold_item_when_one_is_given():
    scores = np.array([[5.0, 4.0, 3.0, 1.0, 0.5],
                       [5.0, 4.0, 3.0, 4.5, 0.0]])
    cold = np.array([False, False, False, True, True])
    # Row 0 offers item 4 (needs 3.5); row 1 chose nothing (no history), so it never fires.
    np.testing.assert_array_equal(
        slot_gaps(scores, cold, position=2, chosen=np.array([4, -1])), [3.5, np.inf]
    )


def test_text_vectors_are_unit_rows_and_keep_zero_rows():
    vectors = text_vectors(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 0.0]])


def _fit(
    cyclic_data, runtime, encoder_settings, max_cost: float, chooser: str = "score"
) -> NextItemRecommender:
    settings = ColdSlotSettings(position=3, max_cost=max_cost, chooser=chooser)
    model = NextItemRecommender(
        small_settings(cold_slot=settings), item_encoder=encoder_settings, runtime=runtime
    )
    model.fit(
        cyclic_data,
        validate=lambda m: accuracy_at_1(m, cyclic_data),
        item_embeddings=text_embeddings(N_ITEMS),
    )
    return model


@pytest.mark.parametrize("chooser", ["score", "history_text"])
def test_a_fitted_model_scores_through_the_slot_and_keeps_it_across_save_and_load(
    cyclic_data, runtime, encoder_settings, tmp_path: Path, chooser: str
):
    """Item 23 has no train event. With a generous budget the slot is fitted; model.score (what the harness
    ranks) is the scoring graph's output passed through reserve_cold_slot, the transformer's rule."""
    model = _fit(cyclic_data, runtime, encoder_settings, max_cost=0.9, chooser=chooser)
    slot = model.cold_slot
    assert slot is not None and slot.items.tolist() == [23] and slot.position == 3 and slot.chooser == chooser
    histories = cyclic_data.histories(("train", "validation"))
    users = sorted(histories)
    batch = ScoringBatch(users, [histories[u] for u in users])
    scores = model.score(batch)
    model.cold_slot = None
    raw = model.score(batch)
    model.cold_slot = slot
    np.testing.assert_array_equal(scores, reserve_cold_slot(raw, slot, histories=batch.histories))
    assert (scores != raw).any()  # it fired
    if chooser == "history_text":  # the vectors are the model's text table, unit rows
        np.testing.assert_allclose(slot.vectors, text_vectors(text_embeddings(N_ITEMS)), rtol=1e-6)
    model.save(tmp_path / "model")
    loaded = NextItemRecommender.load(tmp_path / "model")
    assert loaded.cold_slot is not None and loaded.cold_slot.to_dict() == slot.to_dict()
    if chooser == "history_text":
        np.testing.assert_array_equal(loaded.cold_slot.vectors, slot.vectors)
    np.testing.assert_array_equal(loaded.score(batch), scores)


def test_a_zero_budget_turns_the_slot_off(cyclic_data, runtime, encoder_settings):
    assert _fit(cyclic_data, runtime, encoder_settings, max_cost=0.0).cold_slot is None


def _served(model: NextItemRecommender, data, bundle: Path, **export_options):
    """Export ``model`` to ``bundle``, then load it as the transformer does: (catalogue, service, session)."""
    import onnxruntime as ort

    from hyperrec.export.bundle import onnx_path, read_manifest
    from hyperrec.export.next_item import export_next_item_bundle
    from hyperrec.online.catalogue import Catalogue
    from hyperrec.online.service import RecommendationService
    from hyperrec.online.settings import ServingConfig

    export_next_item_bundle(model, data, bundle, model_name="ranker", version="v1", max_history=32,
                            lineage={}, **export_options)
    catalogue = Catalogue.from_bundle(bundle)
    service = RecommendationService(catalogue, model_name="ranker", model_version="v1", max_history=32,
                                    settings=ServingConfig(max_per_category=None),
                                    pseudonymize=lambda raw: raw)
    session = ort.InferenceSession(str(onnx_path(bundle, read_manifest(bundle))),
                                   providers=["CPUExecutionProvider"])
    return catalogue, service, session


@pytest.mark.parametrize("chooser", ["score", "history_text"])
def test_the_served_list_from_the_bundle_equals_the_evaluated_list(cyclic_data, runtime, encoder_settings,
                                                                    tmp_path: Path, chooser: str):
    """Export with the slot, load the bundle as the transformer does, score with the bundle's ONNX ranker:
    RecommendationService answers exactly the top of model.score, cold item included where it was promoted."""
    from hyperrec.export.bundle import has_cold_outputs, read_manifest

    model = _fit(cyclic_data, runtime, encoder_settings, max_cost=0.9, chooser=chooser)
    assert model.cold_slot is not None
    bundle = tmp_path / "bundle"
    catalogue, service, session = _served(model, cyclic_data, bundle)
    assert has_cold_outputs(read_manifest(bundle))
    assert catalogue.cold_slot is not None and catalogue.cold_slot.to_dict() == model.cold_slot.to_dict()
    histories = cyclic_data.histories(("train", "validation"))
    promoted = 0
    for user in sorted(histories):
        plan = service.prepare({"user_id": user, "history": [f"m{i}" for i in histories[user]], "k": 5})
        (scores,) = session.run(["scores"], plan.model_inputs)
        served = [r["item_id"] for r in service.answer(plan, scores[0])["recommendations"]]
        evaluated = model.score(ScoringBatch([user], [histories[user]]))[0]
        assert served == [f"m{i}" for i in np.argsort(-evaluated, kind="stable")[:5]]
        promoted += "m23" in served
    assert promoted > 0  # the slot (position 3) fired for some users, in both lists alike


@pytest.mark.parametrize("chooser", ["score", "history_text"])
def test_the_top_k_path_of_the_exported_bundle_serves_the_full_score_list(
    cyclic_data, runtime, encoder_settings, tmp_path: Path, chooser: str
):
    """The exported graph's top 6 and the slot's cold item (cold_id/cold_score: the best-scored one or the
    text choice), ranked as the transformer's fast path ranks them (the rules over the sparse vector, and
    the prefix's own ranking), answer what the full scores answer, promoted cold item included."""
    from hyperrec.export.triton_config import TritonSettings
    from hyperrec.online.topk_ranking import TopK, prefix_ranking, sparse_scores

    model = _fit(cyclic_data, runtime, encoder_settings, max_cost=0.9, chooser=chooser)
    bundle = tmp_path / "bundle"
    catalogue, service, session = _served(model, cyclic_data, bundle, triton=TritonSettings(top_k=6))
    histories = cyclic_data.histories(("train", "validation"))
    decided = promoted = 0
    for user in sorted(histories):
        plan = service.prepare({"user_id": user, "history": [f"m{i}" for i in histories[user]], "k": 5})
        scores, *outputs = session.run(
            ["scores", "top_ids", "top_scores", "cold_id", "cold_score"], plan.model_inputs
        )
        top = TopK(*outputs).row(0)
        ranked = prefix_ranking(top, plan.history_idx, catalogue, service.settings, depth=5)
        if ranked is None:
            continue
        sparse = sparse_scores(catalogue.n_items, top)
        fast = service.answer(plan, sparse)["recommendations"]
        assert fast == service.answer(plan, scores[0])["recommendations"]
        assert service.respond(plan, sparse, ranked=ranked).response["recommendations"] == fast
        decided += 1
        promoted += "m23" in [r["item_id"] for r in fast]
    assert decided >= len(histories) // 2 and promoted > 0
