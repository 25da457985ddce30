"""The embedded predictor answers gRPC ModelInfer with raw tensor bytes without KServe's data plane
(issue 11), and its answers are byte for byte those of KServe's path; inputs are checked the same way."""

import asyncio

import numpy as np
import pytest
from grpc import StatusCode
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.servicer import InferenceServicer
from serving_helpers import Aborted, GrpcContext, grpc_servicer

from hyperrec.serving.v2_raw import decode_outputs


def infer_request(history, segment, outputs=("top_ids", "top_scores"), version=""):
    request = pb.ModelInferRequest(model_name="ranker", id="r-1", model_version=version)
    for name, array in (("history", np.asarray(history)), ("segment", np.asarray(segment))):
        request.inputs.add(name=name, datatype="INT64", shape=array.shape)
        request.raw_input_contents.append(array.astype("<i8").tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return request


HISTORIES = [[0, 0, 0, 5, 9, 12, 3, 7], [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 40]]


@pytest.mark.parametrize("outputs", [("top_ids", "top_scores"), ("scores",), ()])
def test_the_lean_path_answers_byte_for_byte_what_kserves_data_plane_answers(demo_bundle, outputs):
    servicer, _ = grpc_servicer(demo_bundle)
    request = infer_request(HISTORIES, [[0], [2], [1]], outputs)
    lean = asyncio.run(servicer.ModelInfer(request, GrpcContext()))
    kserve = asyncio.run(InferenceServicer.ModelInfer(servicer, request, GrpcContext()))
    assert [o.name for o in lean.outputs] == [o.name for o in kserve.outputs]
    assert [list(o.shape) for o in lean.outputs] == [list(o.shape) for o in kserve.outputs]
    assert [o.datatype for o in lean.outputs] == [o.datatype for o in kserve.outputs]
    assert list(lean.raw_output_contents) == list(kserve.raw_output_contents)
    assert (lean.id, lean.model_name, lean.model_version) == ("r-1", "ranker", kserve.model_version)
    names = [o.name for o in lean.outputs]
    assert all(array.shape[0] == 3 for array in decode_outputs(lean, names))


@pytest.mark.parametrize("history, segment, message", [
    ([[0, 1, 10_000]], [[0]], "history tokens must lie in"),
    ([[1, 2]], [[0], [0]], "the same non-zero batch"),
    ([[1, 2]], [[-1]], "segment tokens must be >= 0"),
])
def test_bad_inputs_are_invalid_input_with_the_same_messages(demo_bundle, history, segment, message):
    servicer, _ = grpc_servicer(demo_bundle)
    with pytest.raises(InvalidInput, match=message):
        asyncio.run(servicer.ModelInfer(infer_request(history, segment), GrpcContext()))


def test_raw_bytes_short_of_the_declared_shape_are_invalid_input(demo_bundle):
    servicer, _ = grpc_servicer(demo_bundle)
    request = infer_request([[0, 1, 2]], [[0]])
    request.raw_input_contents[0] = request.raw_input_contents[0][:-8]
    with pytest.raises(InvalidInput, match="input 'history' cannot be read"):
        asyncio.run(servicer.ModelInfer(request, GrpcContext()))


def test_a_mistyped_input_is_invalid_input(demo_bundle):
    servicer, _ = grpc_servicer(demo_bundle)
    request = infer_request([[1, 2]], [[0]])
    request.inputs[0].datatype = "FP32"
    with pytest.raises(InvalidInput, match="must be INT64, got FP32"):
        asyncio.run(servicer.ModelInfer(request, GrpcContext()))


def test_a_model_version_other_than_the_served_one_is_not_found(demo_bundle):
    servicer, server = grpc_servicer(demo_bundle)
    served = server.registered_models.get_model("ranker").served_version
    context = GrpcContext()
    with pytest.raises(Aborted, match=f"serves version {served}"):
        asyncio.run(servicer.ModelInfer(infer_request([[1, 2]], [[0]], version="not-" + served), context))
    assert context.code == StatusCode.NOT_FOUND
    answer = asyncio.run(servicer.ModelInfer(infer_request([[1, 2]], [[0]], version=served), GrpcContext()))
    assert answer.model_version == served


def test_a_loading_model_is_not_ready_on_the_lean_path(demo_bundle):
    servicer, _ = grpc_servicer(demo_bundle, load=False)
    with pytest.raises(ModelNotReady):
        asyncio.run(servicer.ModelInfer(infer_request([[1, 2]], [[0]]), GrpcContext()))
