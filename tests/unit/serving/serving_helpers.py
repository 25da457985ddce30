"""Helpers of the serving tests (a uniquely named module: conftest names clash across test folders)."""

from __future__ import annotations

#: Pseudonymized user with a known segment in the demo bundle (pseudonym = "p:" + raw id in these tests).
SEGMENT_USER = "u-seg"


def fake_pseudonymize(user_id: str) -> str:
    return "p:" + user_id


class OnnxScorer:
    """In-process stand-in for the V2 predictor: the bundle's ONNX on onnxruntime."""

    def __init__(self, manifest, bundle):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(bundle / "triton/ranker/1/model.onnx"))
        self.calls = []

    async def score(self, inputs, request_id):
        self.calls.append({name: value.copy() for name, value in inputs.items()})
        return self.session.run(["scores"], inputs)[0]

    async def close(self):
        pass


def make_server(models, http=None):
    """A ModelServer with ``models`` registered (ready or not) and its REST app (``http``: serving.http)."""
    from fastapi.testclient import TestClient

    from hyperrec.serving.server import HyperrecModelServer, create_rest_app

    server = HyperrecModelServer(enable_grpc=False)
    for model in models:
        server.register_model(model)
    return TestClient(create_rest_app(server, http), raise_server_exceptions=False)


def transformer_server(bundle, settings, scorer=None, **build):
    """The transformer's REST test client over ``bundle``, its models loaded; the bundle's ONNX scores by
    default.

    ``build``: more keyword arguments of ``build_models`` (e.g. ``privacy=``).
    """
    from hyperrec.serving.server import build_models

    scorer = scorer if scorer is not None else OnnxScorer(None, bundle)
    models = build_models("transformer", bundle, settings, pseudonymize=fake_pseudonymize,
                          scorer_factory=lambda manifest: scorer, **build)
    for model in models:
        model.load()
    return make_server(models, http=settings.http)


#: The cold slots of ``cold_topk_bundle``: cold items in the lower part of the tiny ranker's score range (its
#: item bias falls with the index); (position, offset) with the offset near the median gap between the best
#: cold item and the warm item at that rank, so that the slot fires for about a third of the test histories.
#: Rank 9 of a top 10 often leaves the prefix short of warm items, so those requests need the full scores.
COLD_ITEMS, COLD_SLOTS = (13, 21, 30, 38, 46, 55), ((4, 2.0), (9, 1.5))


class Aborted(Exception):
    pass


class GrpcContext:
    """The part of grpc.aio.ServicerContext the servicer uses: abort raises, metadata is given."""

    def __init__(self, metadata=()):
        self.metadata = metadata
        self.code = None

    def invocation_metadata(self):
        return self.metadata

    async def abort(self, code, details):
        self.code = code
        raise Aborted(details)


def grpc_servicer(bundle, http=None, load=True):
    """The predictor's gRPC servicer over a (loaded) OnnxRankerModel of ``bundle``, and its server."""
    from hyperrec.online.settings import HttpGuardConfig
    from hyperrec.serving.grpc_guard import GuardedServicer
    from hyperrec.serving.predictor import OnnxRankerModel
    from hyperrec.serving.server import HyperrecModelServer

    model = OnnxRankerModel("ranker", bundle)
    if load:
        model.load()
    server = HyperrecModelServer(enable_grpc=False)
    server.register_model(model)
    servicer = GuardedServicer(server.dataplane, server.model_repository_extension, http or HttpGuardConfig())
    return servicer, server
