"""A lean V2 gRPC inference client: the generated ``GRPCInferenceService`` stub and raw tensor bytes.

KServe's ``InferenceGRPCClient`` builds each request through ``InferRequest``/``InferInput`` objects and
``to_grpc`` (dicts turned into protobuf messages), and each answer through ``InferResponse.from_grpc``; on the
transformer's hot path that conversion cost more CPU than the call (issue 11). This client fills the
``ModelInferRequest`` message directly (``raw_input_contents``, as KServe's client does for numpy inputs) and
reads ``raw_output_contents`` with ``np.frombuffer``. Same service, same messages, the same answers from the
embedded predictor and from Triton. It uses KServe's generated protobuf modules: ``tritonclient.grpc`` cannot
be imported into a process that has imported KServe (``serving/v2_client.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest, ModelReadyRequest
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from .v2_raw import decode_outputs


class V2GrpcClient:
    """One channel to a V2 gRPC server; ``infer`` sends INT64 tensors and returns the named outputs."""

    def __init__(self, url: str, *, channel_args: Sequence[tuple[str, Any]]) -> None:
        if ":" not in url:
            url = f"{url}:80"  # as KServe's client: gRPC needs the port
        self._channel = grpc.aio.insecure_channel(url, options=list(channel_args))
        self._stub = GRPCInferenceServiceStub(self._channel)

    async def infer(self, model_name: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str], *,
                    request_id: str, model_version: str | None, timeout: float) -> list[np.ndarray | None]:
        """The ``outputs`` of one inference (None for an output the answer lacks); gRPC errors propagate."""
        request = ModelInferRequest(model_name=model_name, model_version=model_version or "", id=request_id)
        for name, array in inputs.items():
            request.inputs.add(name=name, datatype="INT64", shape=array.shape)
            request.raw_input_contents.append(np.ascontiguousarray(array, dtype="<i8").tobytes())
        for name in outputs:
            request.outputs.add(name=name)
        response = await self._stub.ModelInfer(request, timeout=timeout)
        return decode_outputs(response, outputs)

    async def is_model_ready(self, model_name: str, timeout: float | None = None) -> bool:
        response = await self._stub.ModelReady(ModelReadyRequest(name=model_name), timeout=timeout)
        return bool(response.ready)

    async def close(self) -> None:
        await self._channel.close()
