"""Export a fitted next-item model and its catalogue into a serving bundle (ONNX + Triton repository).

The exported graph is ``NextItemRecommender.scoring_graph()``, the very module offline evaluation runs, fed
with ``hyperrec.features`` tokens; the export is checked against torch on real user histories before the
bundle is written.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hyperrec.data.prepared import PreparedData
from hyperrec.export.bundle import (
    ITEM_EMBEDDINGS_FILE,
    SEGMENT_POPULARITY_FILE,
    SEGMENTS_FILE,
    build_bundle,
    with_popularity,
)
from hyperrec.export.onnx_contract import check_onnx_matches_torch, export_ranker_onnx
from hyperrec.export.triton_config import TritonSettings
from hyperrec.features import encode_histories, encode_segments
from hyperrec.online.cold_items import COLD_SLOT_FILE

logger = logging.getLogger(__name__)

#: Most popular items per segment kept for the cold-start fallback of users with a segment but no history.
SEGMENT_TOP_ITEMS = 200


def sample_tokens(data: PreparedData, max_history: int, n_users: int = 8) -> dict[str, np.ndarray]:
    """Real train histories of a few users, encoded exactly as the transformer encodes a request."""
    histories = data.histories(("train",))
    users = sorted(histories)[:n_users]
    segments = dict(zip(data.segments["user_id"].astype(str), data.segments["segment"].astype(int)))
    return {
        "history": encode_histories([histories[u] for u in users], max_history),
        "segment": encode_segments([segments.get(u) for u in users]),
    }


def segment_popularity(data: PreparedData) -> pd.DataFrame:
    """Per segment, the share of train positives of its most popular items (cold-start fallback)."""
    train = data.split("train").merge(data.segments, on="user_id")
    counts = train.groupby(["segment", "item_idx"]).size().rename("count").reset_index()
    counts["popularity"] = counts["count"] / counts.groupby("segment")["count"].transform("sum")
    top = counts.sort_values(["segment", "popularity"], ascending=[True, False]).groupby("segment").head(
        SEGMENT_TOP_ITEMS
    )
    return top[["segment", "item_idx", "popularity"]].astype({"segment": "int64", "item_idx": "int64"})


def export_next_item_bundle(
    model: Any,
    data: PreparedData,
    out: Path,
    *,
    model_name: str,
    version: str,
    max_history: int,
    lineage: Mapping[str, Any],
    triton: TritonSettings | None = None,
) -> dict[str, Any]:
    """Write ``out`` as a serving bundle of ``model`` (a fitted NextItemRecommender); return its manifest."""
    import torch

    graph = model.scoring_graph().eval()
    samples = sample_tokens(data, max_history)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        onnx_file = export_ranker_onnx(
            graph, folder / "model.onnx", [torch.from_numpy(v) for v in samples.values()]
        )
        max_diff = check_onnx_matches_torch(graph, onnx_file, samples)
        logger.info("ONNX matches torch on real histories: max abs diff %.2e", max_diff)
        np.save(folder / ITEM_EMBEDDINGS_FILE, model.item_vectors().astype(np.float32))
        data.segments[["user_id", "segment"]].astype({"user_id": str, "segment": "int64"}).to_parquet(
            folder / SEGMENTS_FILE, index=False
        )
        segment_popularity(data).to_parquet(folder / SEGMENT_POPULARITY_FILE, index=False)
        extras = [ITEM_EMBEDDINGS_FILE, SEGMENTS_FILE, SEGMENT_POPULARITY_FILE]
        if (
            getattr(model, "cold_slot", None) is not None
        ):  # the ranking rule the transformer applies to the scores
            extras += model.cold_slot.write(folder / COLD_SLOT_FILE)
        items = with_popularity(data.items, data.split("train"))
        return build_bundle(
            onnx_file,
            items,
            Path(out),
            model_name=model_name,
            version=version,
            max_history=max_history,
            extra_files={name: folder / name for name in extras},
            lineage={**lineage, "model": model.name, "onnx_vs_torch_max_abs_diff": max_diff},
            overwrite=True,
            triton=triton,
        )
