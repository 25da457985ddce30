"""V2 gRPC tensors as raw little-endian bytes: read in place with ``np.frombuffer``, written with ``tobytes``.

Both ends of the transformer → predictor link use this instead of KServe's ``InferRequest``/``InferResponse``
conversions, which on that hot path cost more CPU than the model (issue 11): the transformer's client reads
the predictor's answer (``decode_outputs``), and the embedded predictor reads a request's inputs
(``raw_inputs``) and writes its answer (``raw_response``). Triton speaks the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest, ModelInferResponse
from kserve.protocol.infer_type import InferResponse

#: V2 datatypes the ranker's graph uses, as numpy dtypes (little-endian, as the protocol's raw bytes are).
DTYPES = {
    "INT64": np.dtype("<i8"),
    "INT32": np.dtype("<i4"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

#: numpy dtype kind -> the V2 datatype of the ranker's outputs.
DATATYPES = {"f": "FP32", "i": "INT64"}


def raw_inputs(request: ModelInferRequest) -> dict[str, tuple[str, Callable[[], np.ndarray]]]:
    """``{input name: (datatype, reader)}`` of a request with ``raw_input_contents``; a reader returns the
    tensor as an array of its shape, or raises ``ValueError`` when the bytes do not fill it.

    Raises:
        InvalidInput: the request mixes typed and raw contents, or their counts differ (as KServe checks).
    """
    raw = request.raw_input_contents
    if len(raw) != len(request.inputs):
        raise InvalidInput(f"the number of inputs ({len(request.inputs)}) does not match the number of raw "
                           f"input contents ({len(raw)})")
    tensors: dict[str, tuple[str, Callable[[], np.ndarray]]] = {}
    for tensor, data in zip(request.inputs, raw):
        if tensor.HasField("contents"):
            raise InvalidInput(f"input {tensor.name!r} has both contents and raw_input_contents")
        tensors[tensor.name] = (tensor.datatype, _reader(data, tensor.datatype, tuple(tensor.shape)))
    return tensors


def _reader(data: bytes, datatype: str, shape: tuple[int, ...]) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        return np.frombuffer(data, dtype=dtype_of(datatype, "input")).reshape(shape)

    return read


def dtype_of(datatype: str, what: str) -> np.dtype:
    """The numpy dtype of a V2 datatype; ValueError naming ``what`` for one the ranker does not use."""
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise ValueError(f"{what} has datatype {datatype}; expected one of {sorted(DTYPES)}")
    return dtype


def raw_response(request: ModelInferRequest, model_name: str, model_version: str, names: Sequence[str],
                 arrays: Sequence[np.ndarray]) -> ModelInferResponse:
    """The answer to ``request``: each named output's datatype, shape and raw bytes."""
    response = ModelInferResponse(model_name=model_name, model_version=model_version, id=request.id)
    for name, array in zip(names, arrays):
        datatype = DATATYPES[array.dtype.kind]
        response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        response.raw_output_contents.append(np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes())
    return response


def decode_outputs(response: ModelInferResponse, names: Sequence[str]) -> list[np.ndarray | None]:
    """The named outputs of a V2 answer as arrays: raw bytes read in place, typed ``contents`` through
    KServe."""
    if len(response.raw_output_contents) != len(response.outputs):
        parsed = InferResponse.from_grpc(response)  # typed contents (a server that does not send raw bytes)
        found = [parsed.get_output_by_name(name) for name in names]
        return [None if output is None else output.as_numpy() for output in found]
    by_name = {output.name: index for index, output in enumerate(response.outputs)}
    arrays: list[np.ndarray | None] = []
    for name in names:
        index = by_name.get(name)
        if index is None:
            arrays.append(None)
            continue
        output = response.outputs[index]
        dtype = dtype_of(output.datatype, f"output {name}")
        raw = response.raw_output_contents[index]
        arrays.append(np.frombuffer(raw, dtype=dtype).reshape(tuple(output.shape)))
    return arrays
