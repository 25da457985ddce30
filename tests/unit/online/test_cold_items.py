"""The cold-item slot: one item without training history may take rank ``position``, and only under the
rule."""

from __future__ import annotations

import numpy as np
import pytest

from hyperrec.errors import BundleError
from hyperrec.online.catalogue import Catalogue
from hyperrec.online.cold_items import (
    COLD_SLOT_FILE,
    COLD_VECTORS_FILE,
    ColdSlot,
    choose_cold_items,
    reserve_cold_slot,
)

# Items 0-5 are warm, 6-8 cold. Warm order: 0 (9) > 1 (8) > 2 (7) > 3 (6) > 4 (5) > 5 (4); best cold: 7 (5.5).
SCORES = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 1.0, 5.5, 2.0], dtype=np.float32)
COLD = np.array([6, 7, 8])


def order(scores: np.ndarray) -> list[int]:
    return np.argsort(-scores, kind="stable").tolist()


def test_the_best_cold_item_takes_rank_position_when_its_score_plus_offset_reaches_the_warm_item_there():
    # Rank 3 holds warm item 2 (7.0); cold item 7 (5.5) needs an offset of 1.5.
    promoted = reserve_cold_slot(SCORES, ColdSlot(COLD, position=3, offset=1.5))
    assert order(promoted)[:5] == [0, 1, 7, 2, 3]
    assert promoted.dtype == SCORES.dtype
    unchanged = np.delete(np.arange(9), 7)
    assert np.array_equal(promoted[unchanged], SCORES[unchanged])  # only the promoted item's score moves


def test_below_the_offset_the_slot_does_not_fire():
    assert np.array_equal(reserve_cold_slot(SCORES, ColdSlot(COLD, position=3, offset=1.49)), SCORES)
    assert np.array_equal(reserve_cold_slot(SCORES, ColdSlot(COLD, position=3, offset=-np.inf)), SCORES)


def test_only_one_cold_item_enters_and_only_at_the_slot():
    promoted = reserve_cold_slot(SCORES, ColdSlot(COLD, position=2, offset=np.inf))
    top = order(promoted)
    assert top[:3] == [0, 7, 1]
    assert [i for i in top[:6] if i in COLD] == [7]


def test_a_cold_item_already_within_the_slot_is_left_alone_so_the_rule_is_idempotent():
    slot = ColdSlot(COLD, position=6, offset=np.inf)  # 7 (5.5) already beats the 6th warm item (4.0)
    assert np.array_equal(reserve_cold_slot(SCORES, slot), SCORES)
    once = reserve_cold_slot(SCORES, ColdSlot(COLD, position=2, offset=np.inf))
    assert np.array_equal(reserve_cold_slot(once, ColdSlot(COLD, position=2, offset=np.inf)), once)


def test_ineligible_items_neither_enter_nor_count_as_the_warm_item_displaced():
    eligible = np.ones(9, dtype=bool)
    eligible[[1, 7]] = False  # warm item 1 seen, cold item 7 not a candidate: 8 (2.0) is the best cold item
    promoted = reserve_cold_slot(SCORES, ColdSlot(COLD, position=2, offset=5.0), eligible)
    assert promoted[8] > SCORES[2] and promoted[8] < SCORES[0]  # rank 2 among eligible: between 0 and 2
    assert promoted[7] == SCORES[7]


def test_rows_of_a_batch_are_decided_one_by_one():
    batch = np.stack([SCORES, SCORES - np.where(np.isin(np.arange(9), COLD), 10.0, 0.0)])
    promoted = reserve_cold_slot(batch, ColdSlot(COLD, position=3, offset=2.0))
    assert order(promoted[0])[2] == 7
    assert np.array_equal(promoted[1], batch[1])


def test_no_cold_items_or_too_few_warm_items_change_nothing():
    assert np.array_equal(
        reserve_cold_slot(SCORES, ColdSlot(np.array([], dtype=np.int64), 3, np.inf)), SCORES
    )
    assert np.array_equal(reserve_cold_slot(SCORES, ColdSlot(COLD, position=7, offset=np.inf)), SCORES)


def test_the_slot_round_trips_through_its_file_and_rejects_bad_content(tmp_path):
    slot = ColdSlot(np.array([8, 6, 7]), position=10, offset=np.inf)
    slot.write(tmp_path / COLD_SLOT_FILE)
    again = ColdSlot.read(tmp_path / COLD_SLOT_FILE)
    assert again.items.tolist() == [6, 7, 8] and again.position == 10 and again.offset == np.inf
    (tmp_path / "bad.json").write_text('{"items": [1], "position": 0, "offset": 1}', encoding="utf-8")
    with pytest.raises(BundleError, match="cold slot is malformed"):
        ColdSlot.read(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="outside a catalogue of 5"):
        slot.mask(5)


def test_the_serving_ranking_applies_the_same_rule_as_the_model(service_factory, catalogue_factory):
    """RecommendationService ranks with reserve_cold_slot on the predictor's scores: same list as offline."""
    base = catalogue_factory()
    slot = ColdSlot(np.array([5]), position=2, offset=3.0)
    catalogue = Catalogue(base.item_ids, base.titles, base.categories, base.popularity,
                          embeddings=base.embeddings, cold_slot=slot)
    scores = np.array([10.0, 1.0, 5.0, 4.0, 3.0, 2.5], dtype=np.float32)  # f (item 5) is cold
    plan = service_factory(catalogue).prepare({"user_id": "u", "history": ["a"], "k": 3})
    served = [r["item_id"] for r in service_factory(catalogue).answer(plan, scores)["recommendations"]]
    # History item a is excluded, so warm rank 2 is d (4.0); f (2.5) + 3 >= 4 takes it.
    assert served == ["c", "f", "d"]
    offline = reserve_cold_slot(np.where(np.arange(6) == 0, -np.inf, scores), slot)
    assert [base.item_ids[i] for i in order(offline)[:3]] == served
    plain = [r["item_id"] for r in service_factory(base).answer(plan, scores)["recommendations"]]
    assert plain == ["c", "d", "e"]


def test_a_catalogue_rejects_a_slot_naming_items_it_does_not_have(catalogue_factory):
    base = catalogue_factory()
    with pytest.raises(BundleError, match="6-item catalogue"):
        Catalogue(base.item_ids, base.titles, base.categories, base.popularity,
                  cold_slot=ColdSlot(np.array([6]), position=1, offset=0.0))


# Text vectors of items 0-8 in 2-D: warm items 0-2 point along x, 3-5 along y; cold item 6 along x, 7 along y,
# 8 between them.
VECTORS = np.array(
    [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32
)


def test_a_history_text_slot_offers_the_cold_item_closest_to_the_recent_history_not_the_best_scored():
    slot = ColdSlot(COLD, position=3, offset=10.0, vectors=VECTORS)
    assert slot.chooser == "history_text"
    # A history along x (items 0, 1) chooses cold item 6 (score 1.0), not 7 (the best-scored cold item, 5.5).
    promoted = reserve_cold_slot(SCORES, slot, histories=[np.array([0, 1])])
    assert order(promoted)[:4] == [0, 1, 6, 2]
    assert promoted[7] == SCORES[7]
    # The offset still decides whether it fires: 1.0 + 5.9 < 7.0 (the warm item at rank 3).
    tight = ColdSlot(COLD, position=3, offset=5.9, vectors=VECTORS)
    assert np.array_equal(reserve_cold_slot(SCORES, tight, histories=[np.array([0, 1])]), SCORES)


def test_only_the_last_window_history_items_choose_and_an_empty_history_chooses_none():
    slot = ColdSlot(COLD, position=3, offset=10.0, vectors=VECTORS, window=2)
    chosen = choose_cold_items(np.stack([SCORES] * 3), slot, np.ones((3, 9), dtype=bool),
                               [np.array([0, 1, 2, 3, 4]), np.array([3, 0, 1]), np.array([], dtype=np.int64)])
    assert chosen.tolist() == [7, 6, -1]  # the last two of row 0 point along y; row 2 has no history
    # A cold item in the history is never offered, even when its (penalized) score is finite.
    assert choose_cold_items(
        SCORES[None], slot, np.ones((1, 9), dtype=bool), [np.array([0, 6])]
    ).tolist() == [8]
    assert np.array_equal(reserve_cold_slot(SCORES, slot, histories=[np.array([], dtype=np.int64)]), SCORES)


def test_a_history_text_slot_chooses_among_eligible_cold_items_only_and_needs_the_histories():
    slot = ColdSlot(COLD, position=3, offset=10.0, vectors=VECTORS)
    eligible = np.ones(9, dtype=bool)
    eligible[6] = False  # the closest cold item is not a candidate: 8 (0.6 along x) is the next closest
    promoted = reserve_cold_slot(SCORES, slot, eligible, histories=[np.array([0])])
    assert order(promoted)[2] == 8 and promoted[6] == SCORES[6]
    with pytest.raises(ValueError, match="one history per row"):
        reserve_cold_slot(SCORES, slot)


def test_a_history_text_slot_round_trips_with_its_vectors_and_refuses_a_mismatch(tmp_path):
    slot = ColdSlot(COLD, position=10, offset=1.5, vectors=VECTORS, window=5)
    assert slot.write(tmp_path / COLD_SLOT_FILE) == [COLD_SLOT_FILE, COLD_VECTORS_FILE]
    again = ColdSlot.read(tmp_path / COLD_SLOT_FILE)
    assert again.to_dict() == slot.to_dict() and again.window == 5
    np.testing.assert_array_equal(again.vectors, VECTORS)
    with pytest.raises(BundleError, match="malformed"):
        ColdSlot.from_dict(slot.to_dict())  # a history-text slot without its vectors
    with pytest.raises(ValueError, match="do not cover"):
        ColdSlot(COLD, position=1, offset=0.0, vectors=VECTORS[:5])


def test_the_served_ranking_chooses_by_the_request_history_as_the_model_does(
    service_factory, catalogue_factory
):
    """RecommendationService passes the request's history to the rule: the same cold item as offline."""
    base = catalogue_factory()
    vectors = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    slot = ColdSlot(np.array([4, 5]), position=2, offset=5.0, vectors=vectors, window=1)  # e and f are cold
    catalogue = Catalogue(base.item_ids, base.titles, base.categories, base.popularity,
                          embeddings=base.embeddings, cold_slot=slot)
    scores = np.array([10.0, 9.0, 5.0, 4.0, 3.0, 2.5], dtype=np.float32)
    service = service_factory(catalogue)
    for history, expected in ((["b", "a"], ["c", "e", "d"]), (["a", "b"], ["c", "f", "d"])):
        plan = service.prepare(
            {"user_id": "u", "history": history, "k": 3}
        )  # the last item chooses (window 1)
        served = [r["item_id"] for r in service.answer(plan, scores)["recommendations"]]
        assert served == expected
        offline = reserve_cold_slot(np.where(np.arange(6) < 2, -np.inf, scores), slot,
                                    histories=[np.array([base.item_ids.index(i) for i in history])])
        assert [base.item_ids[i] for i in order(offline)[:3]] == served


def test_a_top_k_prefix_promotes_the_graphs_cold_item_even_below_a_better_scored_cold_item(catalogue_factory):
    """For a history-text slot the graph returns the text choice (item 5), not the best-scored cold item (4,
    already in the prefix): the prefix rule promotes 5, as the full-score rule does with the same history."""
    from hyperrec.online.settings import ServingConfig
    from hyperrec.online.topk_ranking import TopK, _with_cold_slot, prefix_ranking

    base = catalogue_factory()
    vectors = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    slot = ColdSlot(np.array([4, 5]), position=2, offset=10.0, vectors=vectors)
    catalogue = Catalogue(base.item_ids, base.titles, base.categories, base.popularity, cold_slot=slot)
    top = TopK(np.array([0, 4, 1, 2]), np.array([9.0, 8.5, 8.0, 7.0], dtype=np.float32), np.array([5]),
               np.array([1.0], dtype=np.float32))
    history = np.array([3])
    seen = np.isin(np.arange(6), history)
    items, scores = _with_cold_slot(top.ids, top.scores.astype(np.float64), top, seen, catalogue.cold_mask,
                                    slot)
    assert items[np.argsort(-scores, kind="stable")].tolist() == [0, 4, 5, 1, 2]
    ranked = prefix_ranking(top, history, catalogue, ServingConfig(max_per_category=None), depth=4)
    assert ranked is not None and ranked.items.tolist() == [0, 4, 5, 1]
    full = np.array([-np.inf, 8.0, 7.0, -np.inf, 8.5, 1.0])
    full[0] = 9.0
    offline = reserve_cold_slot(full, slot, np.arange(6) != 3, histories=[history])
    assert order(offline)[:5] == [0, 4, 5, 1, 2]
