"""Settings of the predictor path (``serving.predictor``): the in-graph top k, the onnxruntime session and the
embedded predictor's dynamic batcher.

Export writes ``top_k``, ``max_batch_size`` and ``max_queue_delay_us`` into the bundle (ONNX graph and Triton
config.pbtxt), so Triton on a cluster and the embedded predictor schedule the same way. This module must not
import ``hyperrec.config``.
"""

from __future__ import annotations

from pydantic import Field

from hyperrec.settings_base import Section


class PredictorSettings(Section):
    """How the ranker is exported and run behind the V2 protocol."""

    top_k: int = Field(
        500, ge=1,
        description="Depth K of the top_ids/top_scores outputs the export appends to the ONNX graph (at most "
        "n_items). Requests whose k (or bandit top_n) exceeds it, or whose category cap it cannot fill, are "
        "ranked from the full scores instead: a second predictor call. On the demo bundle with "
        "max_per_category 3 and k 10 that was 16 % of requests at K 100, 1 % at 300 and none at 500.",
    )
    use_top_k: bool = Field(
        True,
        description="Transformer asks the predictor for top_ids/top_scores instead of all scores when the "
        "bundle has them and the request's rules allow it (no candidate list, no popularity blend).",
    )
    max_batch_size: int = Field(
        64,
        ge=1,
        description="Largest batch one inference runs (Triton's max_batch_size, written at export); "
        "the embedded predictor answers a larger request with 400.",
    )
    max_queue_delay_us: int = Field(
        200, ge=0, le=100_000,
        description="Dynamic batching: how long the first queued request waits for others to join its batch.",
    )
    lone_inline_gap_us: int = Field(
        300, ge=0, le=1_000_000,
        description="Embedded predictor: a single-row request that finds the batcher idle, its last run "
        "finished at least this long ago, runs at once on the server's event loop instead of being handed to "
        "the inference thread (at concurrency 1: 13 % lower p50, 18 % less predictor CPU); a request "
        "right behind another is queued, so batches still form under load. 0: every request is queued.",
    )
    max_queued_rows: int = Field(
        4096,
        ge=1,
        description="Bound of the embedded batcher's queue; past it a request gets 503 (back-pressure).",
    )
    trim_left_padding: bool = Field(
        True,
        description="Embedded predictor: drop all-padding history columns before inference when a probe at "
        "load shows the graph's scores do not depend on them (serving/padding.py).",
    )
    intra_op_threads: int = Field(
        1, ge=1, description="onnxruntime intra-op threads of the embedded predictor."
    )
    inter_op_threads: int = Field(
        1, ge=1, description="onnxruntime inter-op threads of the embedded predictor."
    )
    allow_spinning: bool = Field(
        False, description="Let onnxruntime's idle threads spin (session.intra_op.allow_spinning); off on "
        "shared CPUs, where spinning burns the cores the transformer needs.",
    )
