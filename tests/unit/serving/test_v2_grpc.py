"""The lean gRPC client reads V2 answers as KServe's client does: raw bytes in place, typed contents through
KServe's decoder, a missing output as None."""

import numpy as np
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferResponse

from hyperrec.serving.v2_raw import decode_outputs


def test_raw_outputs_are_read_by_name_with_their_shape_and_type():
    ids, scores = np.array([[3, 1, 2]], dtype=np.int64), np.array([[0.5, 0.25, -1.0]], dtype=np.float32)
    response = ModelInferResponse(model_name="ranker")
    response.outputs.add(name="top_scores", datatype="FP32", shape=[1, 3])
    response.outputs.add(name="top_ids", datatype="INT64", shape=[1, 3])
    response.raw_output_contents.extend([scores.tobytes(), ids.tobytes()])
    got_ids, got_scores, missing = decode_outputs(response, ["top_ids", "top_scores", "cold_id"])
    assert got_ids.dtype == np.int64 and got_ids.tolist() == ids.tolist()
    assert got_scores.dtype == np.float32 and got_scores.tolist() == scores.tolist()
    assert missing is None


def test_typed_contents_are_read_through_kserve():
    response = ModelInferResponse(model_name="ranker")
    output = response.outputs.add(name="top_ids", datatype="INT64", shape=[1, 2])
    output.contents.int64_contents.extend([7, 4])
    (ids,) = decode_outputs(response, ["top_ids"])
    assert ids.tolist() == [[7, 4]]
