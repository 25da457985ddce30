"""A tiny ranker that satisfies the bundle contract, and a synthetic demo bundle built from it.

Used by the serving tests, by ``hyperrec serve --demo`` and by ``hyperrec bench serve`` when no bundle is
given. The model is untrained (seeded random weights): it exists to exercise the serving path, and its
recommendations mean nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hyperrec.features import encode_histories, encode_segments

DEMO_CATEGORIES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Documentary")


def tiny_ranker(n_items: int, *, dim: int = 16, n_segments: int = 4, seed: int = 0) -> Any:
    """A torch module (history [B, S] int64, segment [B] int64) -> scores [B, n_items] float32.

    User state = masked mean of the history's item embeddings + a segment embedding; scores = dot product
    with the item embeddings plus an item bias.
    """
    import torch
    from torch import nn

    class TinyRanker(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
            self.segments = nn.Embedding(n_segments + 1, dim)
            self.bias = nn.Parameter(torch.zeros(n_items))

        def forward(self, history: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
            mask = (history > 0).unsqueeze(-1).to(torch.float32)
            summed = (self.items(history) * mask).sum(dim=1)
            user = summed / mask.sum(dim=1).clamp(min=1.0) + self.segments(segment)
            return user @ self.items.weight[1:].T + self.bias

        def item_embeddings(self) -> np.ndarray:
            return self.items.weight[1:].detach().cpu().numpy().astype(np.float32)

    torch.manual_seed(seed)
    model = TinyRanker()
    with torch.no_grad():
        model.bias.copy_(torch.linspace(0.5, -0.5, n_items))
    return model.eval()


def demo_items(n_items: int, *, seed: int = 0) -> pd.DataFrame:
    """A synthetic catalogue in items.parquet form (popularity falls with item_idx, Zipf-like)."""
    rng = np.random.default_rng(seed)
    categories = [
        sorted(set(rng.choice(DEMO_CATEGORIES, size=int(rng.integers(1, 3)), replace=False).tolist()))
        for _ in range(n_items)
    ]
    popularity = 1.0 / np.arange(1, n_items + 1)
    return pd.DataFrame(
        {
            "item_id": [f"m{i:05d}" for i in range(n_items)],
            "title": [f"Demo movie {i}" for i in range(n_items)],
            "categories": categories,
            "popularity": popularity / popularity.sum(),
            "item_idx": np.arange(n_items, dtype=np.int32),
        }
    )


def sample_inputs(n_items: int, max_history: int, *, batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Encoded (history, segment) inputs built with hyperrec.features, as serving builds them."""
    rng = np.random.default_rng(seed)
    histories = [rng.integers(0, n_items, size=int(rng.integers(0, max_history + 3))) for _ in range(batch)]
    segments = [None if i % 2 == 0 else int(i % 3) for i in range(batch)]
    return {"history": encode_histories(histories, max_history), "segment": encode_segments(segments)}


def build_demo_bundle(
    out: Path,
    *,
    n_items: int = 200,
    max_history: int = 20,
    model_name: str = "ranker",
    version: str = "demo-1",
    with_embeddings: bool = True,
    seed: int = 0,
    dynamo: bool = True,
    overwrite: bool = True,
    segment_users: dict[str, int] | None = None,
    triton: Any = None,
    cold_slot: Any = None,
) -> dict[str, Any]:
    """Export the tiny ranker and write a complete bundle to ``out``; return its manifest.

    ``segment_users`` maps pseudonymized user ids to segments (segments.parquet); segment popularity is
    synthetic (each segment prefers a different slice of the catalogue). ``triton``: a
    ``hyperrec.export.bundle.TritonSettings`` (default: its defaults). ``cold_slot``: a
    ``hyperrec.online.cold_items.ColdSlot`` written as the bundle's ``cold_slot.json`` (default: none).
    """
    import tempfile

    import torch

    from hyperrec.export.bundle import build_bundle
    from hyperrec.export.onnx_contract import check_onnx_matches_torch, export_ranker_onnx

    model = tiny_ranker(n_items, seed=seed)
    samples = sample_inputs(n_items, max_history, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        onnx_file = export_ranker_onnx(
            model, tmp_path / "model.onnx", [torch.from_numpy(v) for v in samples.values()],
            dynamo=dynamo,
        )
        max_diff = check_onnx_matches_torch(model, onnx_file, samples)
        extras = _demo_side_files(tmp_path, n_items, model.item_embeddings() if with_embeddings else None,
                                  segment_users or {}, cold_slot)
        return build_bundle(
            onnx_file,
            demo_items(n_items, seed=seed),
            Path(out),
            model_name=model_name,
            version=version,
            max_history=max_history,
            extra_files=extras,
            lineage={"source": "hyperrec.export.tiny (untrained demo model)", "seed": seed,
                     "onnx_vs_torch_max_abs_diff": max_diff},
            overwrite=overwrite,
            triton=triton,
        )


def _demo_side_files(folder: Path, n_items: int, embeddings: np.ndarray | None, segment_users: dict[str, int],
                     cold_slot: Any) -> dict[str, Path]:
    """Write the demo bundle's optional files into ``folder``; return ``build_bundle``'s ``extra_files``.

    Segment popularity is synthetic: segment s prefers every fourth item from s on.
    """
    from hyperrec.bundle_verify import ITEM_EMBEDDINGS_FILE, SEGMENT_POPULARITY_FILE, SEGMENTS_FILE
    from hyperrec.online.cold_items import COLD_SLOT_FILE

    extras: dict[str, Path] = {}
    if embeddings is not None:
        np.save(folder / ITEM_EMBEDDINGS_FILE, embeddings)
        extras[ITEM_EMBEDDINGS_FILE] = folder / ITEM_EMBEDDINGS_FILE
    pd.DataFrame({"user_id": list(segment_users), "segment": list(segment_users.values())}).astype(
        {"user_id": str, "segment": "int64"}
    ).to_parquet(folder / SEGMENTS_FILE, index=False)
    extras[SEGMENTS_FILE] = folder / SEGMENTS_FILE
    rows = []
    for segment in range(4):
        favourites = np.arange(segment, n_items, 4)[:50]
        rows += [
            {"segment": segment, "item_idx": int(i), "popularity": 1.0 / (rank + 1)}
            for rank, i in enumerate(favourites)
        ]
    pd.DataFrame(rows).to_parquet(folder / SEGMENT_POPULARITY_FILE, index=False)
    extras[SEGMENT_POPULARITY_FILE] = folder / SEGMENT_POPULARITY_FILE
    if cold_slot is not None:
        extras.update({name: folder / name for name in cold_slot.write(folder / COLD_SLOT_FILE)})
    return extras
