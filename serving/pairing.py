"""Predictor pairing. The transformer and the predictor load their own copy of a bundle (a cluster delivers
the bundle root to the transformer and its ``triton/`` to Triton), so nothing forces the two to be the same
bundle: during a rollout or a canary, KServe routes each transformer → predictor call to either predictor
revision. The predictor's scores are only meaningful over the catalogue they were trained for, so
``PairedScorer`` reads the predictor's V2 model metadata (``GET /v2/models/<name>`` or gRPC ``ModelMetadata``)
at load and then periodically, and while the ``scores`` output's item axis differs from the transformer's
catalogue size it refuses the predictor's scores: answers degrade to popularity (``degraded: true``),
``hyperrec_errors_total{kind= "predictor_mismatch"}`` counts them and ``hyperrec_predictor_mismatch`` is 1.
Triton's model version is always ``1`` (the bundle's repository layout), so the item count is what the
metadata can tell; each response's shape is checked again by ``TritonV2Client``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from prometheus_client import Gauge

from hyperrec.export.bundle import has_cold_outputs
from hyperrec.online.errors import PredictorUnavailable
from hyperrec.online.settings import ServingConfig
from hyperrec.online.topk_ranking import TopK

from .metrics import ERRORS
from .revisions import ScorerFactory
from .v2_client import ScoresClient, TritonV2Client

logger = logging.getLogger(__name__)

PREDICTOR_MISMATCH = Gauge(
    "hyperrec_predictor_mismatch",
    "1 while the predictor's model metadata contradicts the transformer's catalogue (its scores are refused "
    "and "
    "answers degrade); 0 when they agree or could not be checked.",
    ["model", "revision"],
)
#: Deadline of one model-metadata call (at load it delays readiness by at most this much).
METADATA_TIMEOUT_S = 2.0
#: Seconds between two checks while the predictor fits; after a mismatch, a failed check or a failed call.
RECHECK_S, RECHECK_SOON_S = 30.0, 5.0

SCORES_OUTPUT = "scores"


@dataclass(frozen=True)
class Pairing:
    """What the predictor's model metadata says about it serving this transformer's catalogue."""

    state: Literal["paired", "mismatch", "unknown"]
    detail: str


def check_pairing(metadata: Mapping[str, Any], *, n_items: int, model_name: str) -> Pairing:
    """Compare V2 model metadata (the REST JSON or the gRPC message as a dict) with a catalogue of
    ``n_items``.

    ``mismatch`` only on a positive contradiction: outputs without ``scores``, or a ``scores`` item axis (its
    last dimension) other than ``n_items``. Metadata that cannot tell (no outputs yet, a dynamic item axis) is
    ``unknown``: scores are then used and checked per response.
    """
    outputs = list(metadata.get("outputs") or [])
    if not outputs:
        return Pairing("unknown", f"the predictor lists no outputs for model {model_name!r} (still loading?)")
    scores = next((o for o in outputs if o.get("name") == SCORES_OUTPUT), None)
    if scores is None:
        names = sorted(str(o.get("name")) for o in outputs)
        return Pairing(
            "mismatch", f"the predictor's model {model_name!r} has outputs {names}, no {SCORES_OUTPUT!r}"
        )
    try:
        shape = [int(d) for d in scores.get("shape") or []]
    except (TypeError, ValueError):
        return Pairing("unknown", f"unreadable {SCORES_OUTPUT!r} shape {scores.get('shape')!r}")
    if not shape or shape[-1] < 0:
        return Pairing("unknown", f"{SCORES_OUTPUT!r} has shape {shape}: no fixed item axis to compare")
    if shape[-1] != n_items:
        return Pairing(
            "mismatch",
            f"the predictor's model {model_name!r} scores {shape[-1]} items (shape {shape}); this "
            "transformer's "
            f"catalogue has {n_items}: they come from different bundles",
        )
    return Pairing("paired", f"{SCORES_OUTPUT!r} shape {shape} fits {n_items} items")


def fetch_model_metadata(settings: ServingConfig, model_name: str, timeout_s: float = METADATA_TIMEOUT_S
                         ) -> dict[str, Any]:
    """The predictor's V2 model metadata over ``settings.predictor_protocol`` (blocking; raises on any
    failure).

    gRPC uses KServe's V2 stubs (``inference.GRPCInferenceService/ModelMetadata``, what Triton implements);
    HTTP is ``GET /v2/models/<name>[/versions/<v>]``.
    """
    version = settings.predictor_model_version
    if settings.predictor_protocol == "grpc":
        import grpc
        from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
        from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

        with grpc.insecure_channel(settings.predictor_url) as channel:
            response = GRPCInferenceServiceStub(channel).ModelMetadata(
                pb.ModelMetadataRequest(name=model_name, version=version), timeout=timeout_s
            )
        return {
            "name": response.name,
            "versions": list(response.versions),
            "platform": response.platform,
            "inputs": [
                {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.inputs
            ],
            "outputs": [
                {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in response.outputs
            ],
        }
    import httpx

    path = f"/v2/models/{model_name}" + (f"/versions/{version}" if version else "")
    response = httpx.get(f"http://{settings.predictor_url}{path}", timeout=timeout_s)
    response.raise_for_status()
    return dict(response.json())


class PairedScorer:
    """A ``ScoresClient`` that passes the predictor's scores on only while its model fits this catalogue.

    ``check`` (blocking) asks the predictor for its model metadata; the transformer's load runs it once, and
    ``score`` re-runs it in a worker thread when due (every ``recheck_s`` while paired, every
    ``recheck_soon_s`` otherwise or after a failed call), never waiting for it. While the state is
    ``mismatch`` every ``score`` raises ``PredictorUnavailable`` (the transformer answers degraded) and counts
    ``hyperrec_errors_total{kind="predictor_mismatch"}``.
    """

    def __init__(
        self,
        inner: ScoresClient,
        *,
        transformer_name: str,
        model_name: str,
        n_items: int,
        fetch_metadata: Callable[[], Mapping[str, Any]],
        recheck_s: float = RECHECK_S,
        recheck_soon_s: float = RECHECK_SOON_S,
        clock: Callable[[], float] = time.monotonic,
        revision: str = "",
    ) -> None:
        self.inner = inner
        self.transformer_name = transformer_name
        self.revision = revision
        self.model_name = model_name
        self.n_items = n_items
        self._fetch = fetch_metadata
        self.recheck_s = recheck_s
        self.recheck_soon_s = recheck_soon_s
        self._clock = clock
        self.pairing = Pairing("unknown", "not checked yet")
        self._checked_at: float | None = None
        self._suspect = False
        self._refresh: asyncio.Future[Pairing] | None = None
        PREDICTOR_MISMATCH.labels(model=transformer_name, revision=revision).set(0)

    def check(self) -> Pairing:
        """Ask the predictor now (blocking, bounded by the fetch's timeout) and record the answer."""
        try:
            metadata = self._fetch()
        except Exception as exc:  # noqa: BLE001 - unreachable, not loaded yet, unknown model: cannot tell
            pairing = Pairing("unknown", f"no model metadata from the predictor ({_describe(exc)})")
        else:
            pairing = check_pairing(metadata, n_items=self.n_items, model_name=self.model_name)
        self._record(pairing)
        return pairing

    def due(self) -> bool:
        """Whether the next ``score`` should start a check."""
        if self._checked_at is None:
            return True
        soon = self._suspect or self.pairing.state != "paired"
        return self._clock() - self._checked_at >= (self.recheck_soon_s if soon else self.recheck_s)

    async def score(self, inputs: dict[str, np.ndarray], request_id: str) -> np.ndarray:
        return await self._guarded(self.inner.score(inputs, request_id))

    async def top_k(self, inputs: dict[str, np.ndarray], request_id: str) -> TopK:
        """The inner client's in-graph top k, under the same pairing guard as ``score``."""
        return await self._guarded(self.inner.top_k(inputs, request_id))

    @property
    def k(self) -> int | None:
        """K of the inner client's top-k outputs (None: full scores only)."""
        return getattr(self.inner, "k", None)

    @property
    def cold_outputs(self) -> bool:
        """Whether the inner client's top k brings the best cold item."""
        return bool(getattr(self.inner, "cold_outputs", False))

    async def _guarded(self, call: Any) -> Any:
        self._maybe_recheck()
        if self.pairing.state == "mismatch":
            call.close()
            ERRORS.labels(
                model=self.transformer_name, kind="predictor_mismatch", revision=self.revision
            ).inc()
            raise PredictorUnavailable(f"predictor scores refused: {self.pairing.detail}")
        try:
            return await call
        except PredictorUnavailable:
            self._suspect = True  # a rollout may have swapped the predictor's model: look again soon
            raise

    async def is_ready(self) -> bool:
        """The predictor's own model readiness (the transformer's readiness probe); True when it cannot
        tell."""
        probe = getattr(self.inner, "is_ready", None)
        return True if probe is None else bool(await probe())

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
        await self.inner.close()

    def _maybe_recheck(self) -> None:
        if (self._refresh is None or self._refresh.done()) and self.due():
            self._refresh = asyncio.ensure_future(asyncio.to_thread(self.check))

    def _record(self, pairing: Pairing) -> None:
        previous, first = self.pairing, self._checked_at is None
        self.pairing, self._checked_at, self._suspect = pairing, self._clock(), False
        PREDICTOR_MISMATCH.labels(model=self.transformer_name, revision=self.revision).set(
            1 if pairing.state == "mismatch" else 0)
        if not first and pairing.state == previous.state:
            return
        if pairing.state == "mismatch":
            logger.error("transformer %s refuses the predictor's scores until it serves this catalogue "
                         "(answers are degraded meanwhile): %s", self.transformer_name, pairing.detail)
        elif pairing.state == "paired":
            logger.info(
                "transformer %s: the predictor's model fits the catalogue (%s)",
                self.transformer_name,
                pairing.detail,
            )
        else:
            logger.warning(
                "transformer %s cannot check the predictor's model yet (%s); responses are checked "
                "one by one meanwhile",
                self.transformer_name,
                pairing.detail,
            )


def _describe(exc: BaseException) -> str:
    """One line about a failed metadata call (gRPC errors: status and details, not their multi-line repr)."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):
        try:
            return f"{getattr(code(), 'name', code())}: {details()}"
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def paired_scorer_factory(
    settings: ServingConfig,
    *,
    transformer_name: str,
    fetch_metadata: Callable[[str], Mapping[str, Any]] | None = None,
    revision: str = "",
) -> ScorerFactory:
    """The transformer's default scorer: ``TritonV2Client`` behind a ``PairedScorer``, checked once at load.

    ``fetch_metadata(model_name)`` defaults to ``fetch_model_metadata`` with ``settings``.
    """

    def build(manifest: dict[str, Any]) -> ScoresClient:
        model_name, n_items = str(manifest["model_name"]), int(manifest["n_items"])
        fetch = fetch_metadata or (lambda name: fetch_model_metadata(settings, name))
        scorer = PairedScorer(
            TritonV2Client(settings, model_name, n_items, manifest.get("top_k"),
                           cold_outputs=has_cold_outputs(manifest)),
            transformer_name=transformer_name, model_name=model_name,
            n_items=n_items, fetch_metadata=lambda: fetch(model_name), revision=revision,
        )
        scorer.check()  # at load: logs and sets the gauge; an unreachable predictor never fails the load
        return scorer

    return build
