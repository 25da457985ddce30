"""Embedded V2 predictor: the bundle's ONNX ranker on onnxruntime, behind the same contract as Triton.

Tensor names, datatypes and shapes are those of the bundle manifest (history INT64 [B, S], segment INT64
[B] → scores FP32 [B, n_items]), so the transformer cannot tell it from Triton serving
``<bundle>/triton``. Use it where no GPU or Triton is at hand: local runs, tests, CPU-only clusters.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from hyperrec.export.bundle import HISTORY_INPUT, SCORES_OUTPUT, SEGMENT_INPUT, onnx_path, verify_bundle

logger = logging.getLogger(__name__)


class OnnxRankerModel(Model):
    """A KServe model answering V2 infer requests with onnxruntime."""

    def __init__(self, name: str, bundle_dir: Path, *, intra_op_threads: int | None = None) -> None:
        super().__init__(name)
        self.bundle_dir = Path(bundle_dir)
        self.intra_op_threads = intra_op_threads
        self._session: Any = None
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
            options = ort.SessionOptions()
            if self.intra_op_threads:
                options.intra_op_num_threads = self.intra_op_threads
            self._session = ort.InferenceSession(
                str(onnx_path(self.bundle_dir, manifest)), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._manifest = manifest
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

    def get_input_types(self) -> list[dict[str, Any]]:
        return list(self._manifest.get("inputs", []))

    def get_output_types(self) -> list[dict[str, Any]]:
        return list(self._manifest.get("outputs", []))

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> InferResponse:
        if not self.ready or self._session is None:
            raise ModelNotReady(self.name, "the bundle is still loading")
        if not isinstance(payload, InferRequest):
            raise InvalidInput(f"{self.name} speaks the V2 protocol: POST /v2/models/{self.name}/infer")
        history, segment = self._inputs(payload)
        try:
            (scores,) = self._session.run([SCORES_OUTPUT], {HISTORY_INPUT: history, SEGMENT_INPUT: segment})
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own types; only segment range is unchecked
            raise InvalidInput(f"the model rejected the inputs (segment out of range?): {exc}") from None
        output = InferOutput(name=SCORES_OUTPUT, shape=list(scores.shape), datatype="FP32")
        output.set_data_from_numpy(np.ascontiguousarray(scores, dtype=np.float32), binary_data=False)
        return InferResponse(
            response_id=payload.id or uuid.uuid4().hex,
            model_name=self.name,
            model_version=str(self._manifest.get("version", "")),
            infer_outputs=[output],
            use_binary_outputs=payload.use_binary_outputs,
        )

    def _inputs(self, request: InferRequest) -> tuple[np.ndarray, np.ndarray]:
        tensors = {}
        for name, rank in ((HISTORY_INPUT, 2), (SEGMENT_INPUT, 2)):
            tensor = request.get_input_by_name(name)
            if tensor is None:
                raise InvalidInput(f"input {name!r} is missing (expected {HISTORY_INPUT!r} and {SEGMENT_INPUT!r})")
            if tensor.datatype != "INT64":
                raise InvalidInput(f"input {name!r} must be INT64, got {tensor.datatype}")
            try:
                array = np.asarray(tensor.as_numpy(), dtype=np.int64)
            except Exception as exc:  # noqa: BLE001 - kserve raises several types on malformed data
                raise InvalidInput(f"input {name!r} cannot be read: {exc}") from None
            if array.ndim != rank:
                raise InvalidInput(f"input {name!r} must have rank {rank}, got shape {list(array.shape)}")
            tensors[name] = array
        history, segment = tensors[HISTORY_INPUT], tensors[SEGMENT_INPUT]
        if segment.shape[1] != 1:
            raise InvalidInput(f"input 'segment' must have shape [batch, 1] (as Triton's config declares), "
                               f"got {list(segment.shape)}")
        segment = segment[:, 0]  # Triton's reshape: the model itself takes [batch]
        if history.shape[0] != segment.shape[0] or history.shape[0] == 0:
            raise InvalidInput(f"history and segment need the same non-zero batch, got {history.shape[0]} "
                               f"and {segment.shape[0]}")
        if history.shape[1] == 0:
            raise InvalidInput("history needs at least one column (pad with 0)")
        if history.min() < 0 or history.max() > self.n_items:
            raise InvalidInput(f"history tokens must lie in 0..{self.n_items} (item_idx + 1, 0 = pad)")
        if segment.min() < 0:
            raise InvalidInput("segment tokens must be >= 0 (0 = unknown segment)")
        return np.ascontiguousarray(history), np.ascontiguousarray(segment)
