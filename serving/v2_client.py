"""Calls the ranker over the V2 inference protocol (gRPC by default, HTTP as an option).

HTTP goes through ``tritonclient.http.aio``. gRPC goes through KServe's own V2 gRPC client: it speaks the
same ``inference.GRPCInferenceService`` as Triton, and ``tritonclient.grpc`` cannot be imported into a
process that has imported KServe (both register the V2 protos: "duplicate symbol
'inference.ServerLiveRequest'", kserve/kserve#3099, triton-inference-server/client#730).

The same client talks to Triton and to the embedded KServe predictor. Every call has a deadline (the
request budget), each attempt its own timeout, and failures are retried a bounded number of times with
exponential backoff and jitter, never past the deadline. Anything that still fails surfaces as
``PredictorUnavailable``, which the transformer turns into a degraded (popularity) answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Protocol

import numpy as np

from hyperrec.export.bundle import to_wire
from hyperrec.online.errors import PredictorUnavailable
from hyperrec.online.settings import ServingConfig

from .metrics import PREDICTOR_RETRIES

logger = logging.getLogger(__name__)

#: gRPC status names and HTTP codes that a retry cannot fix (the request itself is wrong).
_PERMANENT = {"StatusCode.INVALID_ARGUMENT", "StatusCode.NOT_FOUND", "StatusCode.UNIMPLEMENTED", "400", "404", "501"}


class ScoresClient(Protocol):
    """What the transformer needs from a predictor."""

    async def score(self, inputs: dict[str, np.ndarray], request_id: str) -> np.ndarray: ...

    async def close(self) -> None: ...


class TritonV2Client:
    """Scores with tritonclient's asyncio clients; one client per event loop (they are loop-bound)."""

    def __init__(self, settings: ServingConfig, model_name: str, n_items: int) -> None:
        self.settings = settings
        self.model_name = model_name
        self.n_items = n_items
        self._clients: dict[int, Any] = {}

    async def score(self, inputs: dict[str, np.ndarray], request_id: str) -> np.ndarray:
        """Scores [batch, n_items] float32, or PredictorUnavailable after the budget is spent."""
        s = self.settings
        deadline = time.monotonic() + s.request_timeout_s
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PredictorUnavailable(f"predictor budget of {s.request_timeout_s}s spent after {attempt} attempts")
            timeout = min(s.attempt_timeout_s, remaining)
            try:
                scores = await asyncio.wait_for(self._infer(inputs, request_id, timeout), timeout=timeout)
                return self._check(scores, len(next(iter(inputs.values()))))
            except PredictorUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - tritonclient, grpc, aiohttp and timeouts all retry
                reason = _reason(exc)
                if reason in _PERMANENT:
                    raise PredictorUnavailable(f"predictor rejected the request ({reason}): {exc}") from None
                attempt += 1
                if attempt > s.retries:
                    raise PredictorUnavailable(f"predictor failed after {attempt} attempts (last: {reason})") from None
                PREDICTOR_RETRIES.labels(model=self.model_name).inc()
                pause = min(s.backoff_max_s, s.backoff_initial_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
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
                from kserve.inference_client import InferenceGRPCClient

                from .grpc_channel import predictor_channel_args

                # retries off: the retry loop above owns retries, backoff and the overall deadline.
                client = InferenceGRPCClient(self.settings.predictor_url, timeout=self.settings.attempt_timeout_s,
                                             retries=0, channel_args=predictor_channel_args())
            else:
                import tritonclient.http.aio as httpclient

                client = httpclient.InferenceServerClient(
                    self.settings.predictor_url, conn_timeout=self.settings.attempt_timeout_s
                )
            self._clients[loop_id] = client
        return client

    async def _infer(self, inputs: dict[str, np.ndarray], request_id: str, timeout: float) -> np.ndarray:
        client = self._client()
        version = self.settings.predictor_model_version
        inputs = {name: to_wire(name, array) for name, array in inputs.items()}
        if self.settings.predictor_protocol == "grpc":
            from kserve.protocol.infer_type import InferInput, InferRequest

            tensors = []
            for name, array in inputs.items():
                tensor = InferInput(name, list(array.shape), "INT64")
                tensor.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.int64), binary_data=True)
                tensors.append(tensor)
            request = InferRequest(self.model_name, tensors, request_id=request_id, model_version=version or None)
            response = await client.infer(request, timeout=timeout)
            output = response.get_output_by_name("scores")
            return None if output is None else output.as_numpy()
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
                outputs=[httpclient.InferRequestedOutput("scores", binary_data=False)],
                headers={"Content-Type": "application/json"},
            )
        return result.as_numpy("scores")

    def _check(self, scores: Any, batch: int) -> np.ndarray:
        if scores is None:
            raise PredictorUnavailable("predictor answered without a 'scores' output")
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (batch, self.n_items):
            raise PredictorUnavailable(
                f"predictor scores have shape {scores.shape}; expected ({batch}, {self.n_items}): "
                "is the predictor serving the same bundle?"
            )
        return scores


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    for attribute in ("code", "status"):  # grpc.aio.AioRpcError.code(), InferenceServerException.status()
        status = getattr(exc, attribute, None)
        status = status() if callable(status) else status
        if status is not None:
            return str(status)
    return type(exc).__name__
