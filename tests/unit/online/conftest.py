"""A hand-made catalogue small enough to compute expected rankings by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hyperrec.online.catalogue import Catalogue
from hyperrec.online.service import RecommendationService
from hyperrec.online.settings import ServingConfig


def make_catalogue(with_embeddings: bool = True) -> Catalogue:
    items = pd.DataFrame({
        "item_id": ["a", "b", "c", "d", "e", "f"],
        "title": ["A", "B", "C", "D", "E", "F"],
        "categories": [["x"], ["x"], ["x", "y"], ["y"], ["z"], ["z"]],
        "popularity": [0.05, 0.1, 0.15, 0.2, 0.2, 0.3],
        "item_idx": range(6),
    })
    embeddings = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [1, 1], [-1, 0]], dtype=np.float32)
    seg_pop = pd.DataFrame({"segment": [1, 1], "item_idx": [0, 3], "popularity": [5.0, 2.0]})
    segments = pd.DataFrame({"user_id": ["p:seg-user"], "segment": [1]})
    return Catalogue.from_frame(
        items,
        embeddings=embeddings if with_embeddings else None,
        segment_popularity=seg_pop,
        segments=segments,
    )


def make_service(catalogue: Catalogue | None = None, **settings) -> RecommendationService:
    return RecommendationService(
        catalogue or make_catalogue(),
        model_name="ranker",
        model_version="v1",
        max_history=4,
        settings=ServingConfig(**{"max_per_category": None, **settings}),
        pseudonymize=lambda raw: "p:" + raw,
    )


@pytest.fixture
def service() -> RecommendationService:
    return make_service()


@pytest.fixture
def service_factory():
    return make_service


@pytest.fixture
def catalogue_factory():
    return make_catalogue
