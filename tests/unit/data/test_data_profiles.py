"""User-profile text: most recent items first, then searches, within the token budget."""

import pandas as pd

from hyperrec.data.profiles import ItemTextLookup, build_profile, build_profiles, describe_item

ITEMS = pd.DataFrame({
    "item_id": ["1", "2", "3"],
    "title": ["Heat (1995)", "Up (2009)", "Alien (1979)"],
    "categories": [["Action", "Crime"], ["Animation"], []],
    "text": ["heist, Al Pacino, long, shootout", "", "space horror"],
})


def test_an_item_reads_title_genres_and_top_tags():
    assert describe_item("Heat (1995)", ["Action", "Crime"], "heist, Al Pacino, long, shootout") == \
        "Heat (1995) (Action, Crime; heist, Al Pacino, long)"
    assert describe_item("Up (2009)", [], "") == "Up (2009)"


def test_most_recent_items_come_first_then_recent_searches():
    profile = build_profile(["1", "2", "3"], ITEMS, ["old query", "new query"], max_items=10, max_tokens=100)
    assert profile == (
        "Alien (1979) (space horror) | Up (2009) (Animation) | "
        "Heat (1995) (Action, Crime; heist, Al Pacino, long) | search: new query | search: old query"
    )


def test_max_items_unknown_items_and_repeats():
    lookup = ItemTextLookup.from_items(ITEMS)
    assert build_profile(["2", "x", "1", "2"], lookup, max_items=1, max_tokens=100) == "Up (2009) (Animation)"
    assert build_profile(["2", "x", "1", "2"], lookup, max_items=5, max_tokens=100).count("Up (2009)") == 1


def test_the_profile_never_exceeds_the_budget_and_fills_it_word_by_word():
    for budget in range(1, 25):
        profile = build_profile(["1", "2", "3"], ITEMS, ["q"], max_items=10, max_tokens=budget)
        assert len(profile.split()) <= budget
    assert build_profile(["1"], ITEMS, max_items=10, max_tokens=2) == "Heat (1995)"


def test_a_custom_tokenizer_sets_the_budget():
    def characters(text: str) -> int:
        return len(text)

    profile = build_profile(["1", "2", "3"], ITEMS, max_items=10, max_tokens=40, count_tokens=characters)
    assert len(profile) <= 40
    assert profile.startswith("Alien (1979) (space horror) | Up")


def test_profiles_use_train_history_and_only_searches_before_the_last_train_event():
    train = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["1", "2"], "timestamp": [10, 20]})
    searches = pd.DataFrame({"user_id": ["u", "u"], "query": ["before", "after"], "timestamp": [15, 99]})
    profiles = build_profiles(train, searches, ItemTextLookup.from_items(ITEMS), max_items=5, max_tokens=50)
    assert profiles.to_dict("records") == [
        {
            "user_id": "u",
            "profile": "Up (2009) (Animation) | Heat (1995) (Action, Crime; heist, Al Pacino, long)"
            " | search: before",
        }
    ]
