"""Embedded V2 predictor: the bundle's ONNX ranker on onnxruntime, behind the same contract as Triton.

Tensor names, datatypes and shapes are those of the bundle manifest (history INT64 [B, S], segment INT64
[B] → scores FP32 [B, n_items], top_ids INT64 / top_scores FP32 [B, K], with a cold slot also cold_id INT64 /
cold_score FP32 [B, 1]), so the transformer cannot tell it
from Triton serving ``<bundle>/triton``. Use it where no GPU or Triton is at hand: local runs, tests,
CPU-only clusters.

Like Triton it returns the outputs a request names (all of them when it names none), refuses a batch over
the bundle's ``max_batch_size`` (400), and batches concurrent requests (``serving/batcher.py``) on an
onnxruntime session tuned by ``serving.predictor`` (threads, no spinning, all graph optimizations).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from hyperrec.export.bundle import onnx_path, verify_bundle
from hyperrec.export.onnx_contract import HISTORY_INPUT, SEGMENT_INPUT
from hyperrec.online.predictor_settings import PredictorSettings

from .batcher import DynamicBatcher, QueueFull
from .padding import padding_is_inert, trim_left_padding
from .v2_raw import DATATYPES, raw_inputs, raw_response

logger = logging.getLogger(__name__)


class OnnxRankerModel(Model):
    """A KServe model answering V2 infer requests with onnxruntime."""

    def __init__(self, name: str, bundle_dir: Path, *, settings: PredictorSettings | None = None) -> None:
        super().__init__(name)
        self.bundle_dir = Path(bundle_dir)
        self.settings = settings or PredictorSettings()
        self._session: Any = None
        self._batcher: DynamicBatcher | None = None
        self._trim = False
        self._manifest: dict[str, Any] = {}
        self._load_lock = threading.Lock()

    def load(self) -> bool:
        """Verify the bundle's checksums and open an onnxruntime session (idempotent, thread-safe)."""
        if not self._load_lock.acquire(blocking=False):
            return self.ready  # another thread is loading; callers see "not ready" meanwhile
        try:
            if self.ready:
                return True
            import onnxruntime as ort

            manifest = verify_bundle(self.bundle_dir)
            self._session = ort.InferenceSession(
                str(onnx_path(self.bundle_dir, manifest)), sess_options=session_options(self.settings),
                providers=["CPUExecutionProvider"],
            )
            self._manifest = manifest
            self._trim = self.settings.trim_left_padding and padding_is_inert(
                self._session, max_history=int(manifest["max_history"]), n_items=int(manifest["n_items"]))
            self._batcher = DynamicBatcher(
                self._run,
                max_batch_size=self.max_batch_size,
                max_queue_delay_us=self.settings.max_queue_delay_us,
                max_queued_rows=self.settings.max_queued_rows,
                lone_inline_gap_us=self.settings.lone_inline_gap_us,
            )
            self.ready = True
            logger.info("predictor %s loaded bundle version %s (%d items)", self.name, manifest["version"],
                        manifest["n_items"])
            return True
        finally:
            self._load_lock.release()

    @property
    def served_version(self) -> str | None:
        """The bundle version this model serves (V2 ``model_version``); None until loaded."""
        return str(self._manifest["version"]) if self._manifest else None

    @property
    def n_items(self) -> int:
        return int(self._manifest["n_items"])

    @property
    def max_batch_size(self) -> int:
        """The bundle's Triton max_batch_size (what Triton itself would enforce)."""
        return int(self._manifest.get("triton", {}).get("max_batch_size", self.settings.max_batch_size))

    def get_input_types(self) -> list[dict[str, Any]]:
        return list(self._manifest.get("inputs", []))

    def get_output_types(self) -> list[dict[str, Any]]:
        return list(self._manifest.get("outputs", []))

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        if not isinstance(payload, InferRequest):
            self._require_ready()
            raise InvalidInput(f"{self.name} speaks the V2 protocol: POST /v2/models/{self.name}/infer")
        tensors = {tensor.name: (tensor.datatype, tensor.as_numpy) for tensor in payload.inputs}
        names, arrays = await self.infer(tensors, [output.name for output in payload.request_outputs or []])
        outputs = []
        for name, array in zip(names, arrays):
            output = InferOutput(name=name, shape=list(array.shape), datatype=DATATYPES[array.dtype.kind])
            # gRPC: raw bytes (KServe would otherwise go numpy -> list -> numpy); REST: JSON lists.
            output.set_data_from_numpy(np.ascontiguousarray(array), binary_data=bool(payload.from_grpc))
            outputs.append(output)
        return InferResponse(
            response_id=payload.id or uuid.uuid4().hex,
            model_name=self.name,
            model_version=str(self._manifest.get("version", "")),
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
        )

    async def infer_raw(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        """A gRPC ``ModelInfer`` with raw tensor bytes, answered without KServe's data plane.

        The servicer (``serving/grpc_guard.py``) calls this for every request that carries
        ``raw_input_contents`` (the transformer's client and Triton's clients do): the bytes are read in place
        and the answer's ``raw_output_contents`` written straight from the arrays, skipping the request and
        response objects KServe would build and convert on each call. Inputs are checked exactly as
        ``predict`` checks them.
        """
        names, arrays = await self.infer(raw_inputs(request), [output.name for output in request.outputs])
        return raw_response(request, self.name, self.served_version or "", names, arrays)

    async def infer(self, tensors: Mapping[str, tuple[str, Callable[[], np.ndarray]]],
                    asked: list[str]) -> tuple[list[str], list[np.ndarray]]:
        """The outputs ``asked`` for (all when none) and their arrays, for ``{input name: (datatype,
        reader)}``, batched with concurrent calls.

        Raises:
            ModelNotReady: still loading, or the batcher's queue is full (retry later).
            InvalidInput: a missing, mistyped or out-of-range input, or an unknown output.
        """
        self._require_ready()
        names = self._output_names(asked)
        history, segment = self._inputs(tensors)
        assert self._batcher is not None
        try:
            return names, await self._batcher.submit(history, segment, names)
        except QueueFull as exc:
            raise ModelNotReady(self.name, f"overloaded, retry later: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own types; only segment range is unchecked
            raise InvalidInput(f"the model rejected the inputs (segment out of range?): {exc}") from None

    def _require_ready(self) -> None:
        if not self.ready or self._session is None:
            raise ModelNotReady(self.name, "the bundle is still loading")

    def _run(self, history: np.ndarray, segment: np.ndarray, names: Any) -> list[np.ndarray]:
        """One onnxruntime run (on the batcher's inference thread), on the filled history columns when the
        graph ignores padding (``serving/padding.py``)."""
        if self._trim:
            history = np.ascontiguousarray(trim_left_padding(history))
        return self._session.run(list(names), {HISTORY_INPUT: history, SEGMENT_INPUT: segment})

    def _output_names(self, asked: list[str]) -> list[str]:
        """The outputs a request names, checked against the manifest; all of them when it names none."""
        known = [spec["name"] for spec in self._manifest.get("outputs", [])]
        unknown = sorted(set(asked) - set(known))
        if unknown:
            raise InvalidInput(f"unknown output(s) {unknown}; the model has {known}")
        return list(dict.fromkeys(asked)) or known

    def stop(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
        super().stop()

    def _inputs(
        self, tensors: Mapping[str, tuple[str, Callable[[], np.ndarray]]]
    ) -> tuple[np.ndarray, np.ndarray]:
        checked = {}
        for name, rank in ((HISTORY_INPUT, 2), (SEGMENT_INPUT, 2)):
            if name not in tensors:
                raise InvalidInput(
                    f"input {name!r} is missing (expected {HISTORY_INPUT!r} and {SEGMENT_INPUT!r})"
                )
            datatype, read = tensors[name]
            if datatype != "INT64":
                raise InvalidInput(f"input {name!r} must be INT64, got {datatype}")
            try:
                array = np.asarray(read(), dtype=np.int64)
            except Exception as exc:  # noqa: BLE001 - kserve raises several types on malformed data
                raise InvalidInput(f"input {name!r} cannot be read: {exc}") from None
            if array.ndim != rank:
                raise InvalidInput(f"input {name!r} must have rank {rank}, got shape {list(array.shape)}")
            checked[name] = array
        history, segment = checked[HISTORY_INPUT], checked[SEGMENT_INPUT]
        if segment.shape[1] != 1:
            raise InvalidInput(f"input 'segment' must have shape [batch, 1] (as Triton's config declares), "
                               f"got {list(segment.shape)}")
        segment = segment[:, 0]  # Triton's reshape: the model itself takes [batch]
        if history.shape[0] != segment.shape[0] or history.shape[0] == 0:
            raise InvalidInput(f"history and segment need the same non-zero batch, got {history.shape[0]} "
                               f"and {segment.shape[0]}")
        if history.shape[0] > self.max_batch_size:
            raise InvalidInput(f"batch of {history.shape[0]} rows exceeds the model's max_batch_size "
                               f"{self.max_batch_size}; split the request")
        if history.shape[1] == 0:
            raise InvalidInput("history needs at least one column (pad with 0)")
        if history.min() < 0 or history.max() > self.n_items:
            raise InvalidInput(f"history tokens must lie in 0..{self.n_items} (item_idx + 1, 0 = pad)")
        if segment.min() < 0:
            raise InvalidInput("segment tokens must be >= 0 (0 = unknown segment)")
        return np.ascontiguousarray(history), np.ascontiguousarray(segment)


def session_options(settings: PredictorSettings) -> Any:
    """onnxruntime options for many small requests on few shared cores: fixed small thread pools, no spinning
    (idle spinning threads burn the CPU the transformer needs), every graph optimization."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    spinning = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    return options
