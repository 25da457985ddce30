"""The embedded canary's traffic split: per request by share, or sticky per user."""

import random

import pytest

from hyperrec.online.split import TrafficSplit, user_bucket


def test_per_request_the_challenger_gets_its_share():
    split = TrafficSplit(30, rng=random.Random(5))
    share = sum(split.to_challenger("same-user") for _ in range(4000)) / 4000
    assert 0.27 < share < 0.33  # one user is split across revisions, as KServe does


def test_sticky_users_keep_their_revision_and_only_move_when_the_share_grows():
    split = TrafficSplit(10, sticky=True)
    users = [f"user-{i}" for i in range(2000)]
    at_10 = {u for u in users if split.to_challenger(u)}
    assert all(split.to_challenger(u) == (u in at_10) for u in users)  # the same answer every time
    assert 0.07 < len(at_10) / len(users) < 0.13
    split.set_percent(50)
    at_50 = {u for u in users if split.to_challenger(u)}
    assert at_10 <= at_50  # users already on the challenger stay there
    assert user_bucket("user-1") == user_bucket("user-1")


@pytest.mark.parametrize("percent", [-1, 101, 2.5, True, None])
def test_a_share_outside_0_to_100_is_refused(percent):
    with pytest.raises(ValueError, match="0..100"):
        TrafficSplit(percent)


def test_zero_and_hundred_are_exact():
    assert not any(TrafficSplit(0).to_challenger(None) for _ in range(200))
    assert all(TrafficSplit(100).to_challenger(None) for _ in range(200))
