"""Fixtures of the serving tests: one tiny demo bundle per session, settings with a temporary feedback log."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import COLD_ITEMS, COLD_SLOTS, SEGMENT_USER, fake_pseudonymize


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory) -> Path:
    from hyperrec.export.tiny import build_demo_bundle

    out = tmp_path_factory.mktemp("bundle") / "ranker"
    build_demo_bundle(
        out, n_items=60, max_history=8, dynamo=False, segment_users={fake_pseudonymize(SEGMENT_USER): 2}
    )
    return out


@pytest.fixture(scope="session")
def topk_bundle(tmp_path_factory) -> Path:
    """The demo bundle with an in-graph top 10 (K < n_items, so ranking from the prefix can fall short)."""
    from hyperrec.export.tiny import build_demo_bundle
    from hyperrec.export.triton_config import TritonSettings

    out = tmp_path_factory.mktemp("topk") / "ranker"
    build_demo_bundle(out, n_items=60, max_history=8, dynamo=False,
                      triton=TritonSettings(top_k=10, max_batch_size=16, preferred_batch_sizes=(4, 8)))
    return out


@pytest.fixture(
    scope="session", params=COLD_SLOTS, ids=[f"cold-rank{position}" for position, _ in COLD_SLOTS]
)
def cold_topk_bundle(tmp_path_factory, request) -> Path:
    """``topk_bundle`` with a cold slot: its graph also returns the best cold item (cold_id/cold_score)."""
    import numpy as np

    from hyperrec.export.tiny import build_demo_bundle
    from hyperrec.export.triton_config import TritonSettings
    from hyperrec.online.cold_items import ColdSlot

    out = tmp_path_factory.mktemp("cold-topk") / "ranker"
    build_demo_bundle(
        out,
        n_items=60,
        max_history=8,
        dynamo=False,
        triton=TritonSettings(top_k=10, max_batch_size=16, preferred_batch_sizes=(4, 8)),
        cold_slot=ColdSlot(np.array(COLD_ITEMS), position=request.param[0], offset=request.param[1]),
    )
    return out


@pytest.fixture
def serving_settings(tmp_path):
    from hyperrec.online.settings import ServingConfig

    def build(**overrides):
        return ServingConfig(feedback_dir=tmp_path / "feedback", **overrides)

    return build
