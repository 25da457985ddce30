"""Calls the ranker over the V2 inference protocol (gRPC by default, HTTP as an option).

HTTP goes through ``tritonclient.http.aio``. gRPC goes through ``serving/v2_grpc.py``: the generated stub of
the same ``inference.GRPCInferenceService`` as Triton, filled with raw tensor bytes (``tritonclient.grpc``
cannot be imported into a process that has imported KServe: both register the V2 protos, "duplicate symbol
'inference.ServerLiveRequest'", kserve/kserve#3099, triton-inference-server/client#730).

The same client talks to Triton and to the embedded KServe predictor. Every call has a deadline (the
request budget), each attempt its own timeout, and failures are retried a bounded number of times with
exponential backoff and jitter, never past the deadline. Anything that still fails surfaces as
``PredictorUnavailable``, which the transformer turns into a degraded (popularity) answer.

``top_k`` asks only for the in-graph ``top_ids``/``top_scores`` outputs (K values per row instead of
n_items), and ``cold_id``/``cold_score`` where the bundle has them (a cold slot), the hot path of the
transformer; ``score`` asks for the full ``scores``. One client (one gRPC channel or HTTP session) per event
loop is kept for the process's life.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Protocol

import numpy as np

from hyperrec.export.bundle import to_wire
from hyperrec.export.onnx_contract import (
    COLD_ID_OUTPUT,
    COLD_SCORE_OUTPUT,
    SCORES_OUTPUT,
    TOP_IDS_OUTPUT,
    TOP_SCORES_OUTPUT,
)
from hyperrec.online.errors import PredictorUnavailable
from hyperrec.online.settings import ServingConfig
from hyperrec.online.topk_ranking import TopK

from .metrics import PREDICTOR_RETRIES

logger = logging.getLogger(__name__)

#: gRPC status names and HTTP codes that a retry cannot fix (the request itself is wrong).
_PERMANENT = {
    "StatusCode.INVALID_ARGUMENT",
    "StatusCode.NOT_FOUND",
    "StatusCode.UNIMPLEMENTED",
    "400",
    "404",
    "501",
}


class ScoresClient(Protocol):
    """What the transformer needs from a predictor."""

    async def score(self, inputs: dict[str, np.ndarray], request_id: str) -> np.ndarray: ...

    async def close(self) -> None: ...


class TopKClient(ScoresClient, Protocol):
    """A predictor client that can also ask for the in-graph top k (bundles with ``top_k`` in the
    manifest)."""

    async def top_k(self, inputs: dict[str, np.ndarray], request_id: str) -> TopK: ...


class TritonV2Client:
    """Scores with tritonclient's asyncio clients; one client per event loop (they are loop-bound)."""

    def __init__(self, settings: ServingConfig, model_name: str, n_items: int, top_k: int | None = None, *,
                 cold_outputs: bool = False) -> None:
        self.settings = settings
        self.model_name = model_name
        self.n_items = n_items
        #: K of the bundle's top_ids/top_scores outputs; None: the bundle has none (full scores only).
        self.k = top_k
        #: Whether the graph also returns the best cold item (cold_id/cold_score; bundles with a cold slot).
        self.cold_outputs = cold_outputs
        self._clients: dict[int, Any] = {}

    async def score(self, inputs: dict[str, np.ndarray], request_id: str) -> np.ndarray:
        """Scores [batch, n_items] float32, or PredictorUnavailable after the budget is spent."""
        (scores,) = await self._call(inputs, request_id, (SCORES_OUTPUT,))
        return self._check(scores, len(next(iter(inputs.values()))), self.n_items, SCORES_OUTPUT, np.float32)

    async def top_k(self, inputs: dict[str, np.ndarray], request_id: str) -> TopK:
        """Item indices INT64 and scores FP32 [batch, K] of the best K items outside each history, and with
        ``cold_outputs`` the best cold item's [batch, 1]."""
        if self.k is None:
            raise PredictorUnavailable("the bundle has no top-k outputs")
        cold = (COLD_ID_OUTPUT, COLD_SCORE_OUTPUT) if self.cold_outputs else ()
        ids, scores, *best_cold = await self._call(
            inputs, request_id, (TOP_IDS_OUTPUT, TOP_SCORES_OUTPUT, *cold)
        )
        batch = len(next(iter(inputs.values())))
        top = TopK(self._check(ids, batch, self.k, TOP_IDS_OUTPUT, np.int64),
                   self._check(scores, batch, self.k, TOP_SCORES_OUTPUT, np.float32))
        if not best_cold:
            return top
        return TopK(top.ids, top.scores, self._check(best_cold[0], batch, 1, COLD_ID_OUTPUT, np.int64),
                    self._check(best_cold[1], batch, 1, COLD_SCORE_OUTPUT, np.float32))

    async def _call(
        self, inputs: dict[str, np.ndarray], request_id: str, names: tuple[str, ...]
    ) -> list[Any]:
        """The named outputs, retried within the request budget (raises PredictorUnavailable)."""
        s = self.settings
        deadline = time.monotonic() + s.request_timeout_s
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PredictorUnavailable(
                    f"predictor budget of {s.request_timeout_s}s spent after {attempt} attempts"
                )
            timeout = min(s.attempt_timeout_s, remaining)
            try:
                async with asyncio.timeout(timeout):  # not wait_for: that runs the call in a task of its own
                    return await self._infer(inputs, request_id, timeout, names)
            except PredictorUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - tritonclient, grpc, aiohttp and timeouts all retry
                reason = _reason(exc)
                if reason in _PERMANENT:
                    raise PredictorUnavailable(f"predictor rejected the request ({reason}): {exc}") from None
                attempt += 1
                if attempt > s.retries:
                    raise PredictorUnavailable(
                        f"predictor failed after {attempt} attempts (last: {reason})"
                    ) from None
                PREDICTOR_RETRIES.labels(model=self.model_name).inc()
                pause = min(s.backoff_max_s, s.backoff_initial_s * 2 ** (attempt - 1)) * random.uniform(
                    0.5, 1.0
                )
                if time.monotonic() + pause >= deadline:
                    raise PredictorUnavailable(
                        f"predictor failed and its budget of {s.request_timeout_s}s is spent (last: {reason})"
                    ) from None
                logger.debug("predictor attempt %d failed (%s); retrying in %.3fs", attempt, reason, pause)
                await asyncio.sleep(pause)

    async def is_ready(self, timeout: float = 1.0) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client().is_model_ready(self.model_name), timeout))
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    async def close(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.pop(loop_id, None)
        if client is not None:
            await client.close()

    def _client(self) -> Any:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            if self.settings.predictor_protocol == "grpc":
                from .grpc_channel import predictor_channel_args
                from .v2_grpc import V2GrpcClient

                # gRPC's retries off: the retry loop above owns retries, backoff and the overall deadline.
                client = V2GrpcClient(self.settings.predictor_url, channel_args=predictor_channel_args())
            else:
                import tritonclient.http.aio as httpclient

                client = httpclient.InferenceServerClient(
                    self.settings.predictor_url, conn_timeout=self.settings.attempt_timeout_s
                )
            self._clients[loop_id] = client
        return client

    async def _infer(self, inputs: dict[str, np.ndarray], request_id: str, timeout: float,
                     names: tuple[str, ...]) -> list[Any]:
        client = self._client()
        version = self.settings.predictor_model_version
        inputs = {name: to_wire(name, array) for name, array in inputs.items()}
        if self.settings.predictor_protocol == "grpc":
            return await client.infer(
                self.model_name, inputs, names, request_id=request_id, model_version=version, timeout=timeout
            )
        else:
            import tritonclient.http as httpclient

            tensors = []
            for name, array in inputs.items():
                tensor = httpclient.InferInput(name, list(array.shape), "INT64")
                # JSON tensors: KServe's V2 REST endpoint decodes them only with a JSON content type.
                tensor.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.int64), binary_data=False)
                tensors.append(tensor)
            result = await client.infer(
                self.model_name, tensors, model_version=version, request_id=request_id,
                outputs=[httpclient.InferRequestedOutput(name, binary_data=False) for name in names],
                headers={"Content-Type": "application/json"},
            )
        return [result.as_numpy(name) for name in names]

    @staticmethod
    def _check(array: Any, batch: int, width: int, name: str, dtype: type) -> np.ndarray:
        if array is None:
            raise PredictorUnavailable(f"predictor answered without a {name!r} output")
        array = np.asarray(array, dtype=dtype)
        if array.shape != (batch, width):
            raise PredictorUnavailable(
                f"predictor {name} have shape {array.shape}; expected ({batch}, {width}): "
                "is the predictor serving the same bundle?"
            )
        return array


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    for attribute in ("code", "status"):  # grpc.aio.AioRpcError.code(), InferenceServerException.status()
        status = getattr(exc, attribute, None)
        status = status() if callable(status) else status
        if status is not None:
            return str(status)
    return type(exc).__name__
