"""The transformer's start-up wiring, without starting a server.

1. ``python -m hyperrec.serving``'s command line: KServe's ``--predictor_host`` / ``--predictor_protocol``
(what the
   controller appends on a cluster) against hyperrec's ``--predictor_url`` and the config's ``serving``
   section.
2. The predictor pairing check (``hyperrec.serving.server.PairedScorer``): the predictor's V2 model metadata
against
   the transformer's catalogue, and degraded answers instead of scores over another catalogue.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serving_helpers import OnnxScorer, fake_pseudonymize, make_server

from hyperrec.online.errors import PredictorUnavailable
from hyperrec.online.settings import ServingConfig
from hyperrec.serving.__main__ import apply_predictor_flags, main, parse_args, predictor_address
from hyperrec.serving.server import (
    PairedScorer,
    build_models,
    check_pairing,
    paired_scorer_factory,
    predictor_config_for,
)

#: The transformer's args in manifests/base/inferenceservice.yaml and the chart.
MANIFEST_ARGS = ["transformer", "--predictor_protocol", "grpc-v2", "--config", "/etc/hyperrec/config.yaml"]
#: What KServe's controller appends to them for InferenceService "hyperrec" in namespace "hyperrec"
#: (pkg/apis/serving/v1beta1/transformer_custom.go, CustomTransformer.GetContainer).
KSERVE_APPENDS = [
    "--model_name",
    "hyperrec",
    "--predictor_host",
    "hyperrec-predictor.hyperrec",
    "--http_port",
    "8080",
]


def resolved(argv: list[str], settings: ServingConfig | None = None) -> ServingConfig:
    return apply_predictor_flags(settings or ServingConfig(), parse_args(argv))


# --------------------------------------------------------------------------------------------- command line


def test_on_a_cluster_the_transformer_calls_the_predictor_kserve_names():
    args = parse_args(MANIFEST_ARGS + KSERVE_APPENDS)
    settings = apply_predictor_flags(ServingConfig(), args)
    assert settings.predictor_url == "hyperrec-predictor.hyperrec:80"
    assert settings.predictor_protocol == "grpc"
    assert (args.role, args.model_name, args.http_port) == ("transformer", "hyperrec", 8080)
    config = predictor_config_for(settings)  # what KServe's own ModelServer is told
    assert (config.predictor_host, config.predictor_protocol) == ("hyperrec-predictor.hyperrec:80", "grpc-v2")


def test_predictor_host_wins_over_the_configs_predictor_url():
    configured = ServingConfig(predictor_url="10.0.0.7:9000", predictor_protocol="grpc")
    assert resolved(["transformer", "--predictor_host", "ranker-predictor.ml"], configured).predictor_url == (
        "ranker-predictor.ml:80"
    )


def test_without_kserve_flags_the_config_decides():
    configured = ServingConfig(predictor_url="10.0.0.7:9000", predictor_protocol="http")
    assert resolved(["transformer"], configured) == configured
    assert resolved(["transformer"]).predictor_url == "127.0.0.1:8086"  # the embedded predictor's gRPC port


def test_hyperrec_serve_keeps_working_with_predictor_url():
    """``hyperrec serve`` (serving/local.py) passes --predictor_url for the embedded predictor, never a
    host."""
    argv = ["transformer", "--bundle", "/b", "--bind_host", "127.0.0.1", "--serving_settings", "/s.json",
            "--http_port", "8080", "--predictor_url", "127.0.0.1:40001"]
    settings = resolved(argv, ServingConfig(predictor_protocol="http"))
    assert (settings.predictor_url, settings.predictor_protocol) == ("127.0.0.1:40001", "http")


def test_an_explicit_predictor_url_wins_over_kserve_predictor_host():
    argv = MANIFEST_ARGS + ["--predictor_url", "triton.other:8001"] + KSERVE_APPENDS
    assert resolved(argv).predictor_url == "triton.other:8001"


@pytest.mark.parametrize(
    ("flags", "protocol"),
    [
        (["--predictor_protocol", "grpc-v2"], "grpc"),
        (["--predictor_protocol", "v2"], "http"),
        (["--protocol", "v2"], "http"),  # KServe's deprecated spelling (still appended in ModelMesh mode)
        (["--protocol", "v2", "--predictor_protocol", "grpc-v2"], "grpc"),  # the current flag wins
        (["--predictor_protocol", "grpc-v2", "--protocol", "v2"], "grpc"),
    ],
)
def test_kserve_protocol_flags_map_onto_serving_predictor_protocol(flags, protocol):
    assert (
        resolved(["transformer", *flags], ServingConfig(predictor_protocol="http")).predictor_protocol
        == protocol
    )
    assert (
        resolved(["transformer", *flags], ServingConfig(predictor_protocol="grpc")).predictor_protocol
        == protocol
    )


def test_v1_is_refused_not_ignored():
    with pytest.raises(ValueError, match="V2 protocol"):
        resolved(["transformer", "--predictor_protocol", "v1"])
    with pytest.raises(ValueError, match="V2 protocol"):
        resolved(["transformer", "--protocol", "v1"])


def test_tls_to_the_predictor_is_refused():
    with pytest.raises(ValueError, match="--predictor_use_ssl"):
        resolved(["transformer", "--predictor_host", "p.ns", "--predictor_use_ssl", "true"])


@pytest.mark.parametrize(
    ("host", "use_ssl", "address"),
    [
        ("hyperrec-predictor.hyperrec", False, "hyperrec-predictor.hyperrec:80"),
        ("hyperrec-predictor.hyperrec", True, "hyperrec-predictor.hyperrec:443"),
        (
            "hyperrec-predictor.hyperrec.svc.cluster.local:9000",
            False,
            "hyperrec-predictor.hyperrec.svc.cluster.local:9000",
        ),
        ("http://p.ns/", False, "p.ns:80"),
        ("[fd00::1]", False, "[fd00::1]:80"),
        ("[fd00::1]:8001", False, "[fd00::1]:8001"),
    ],
)
def test_predictor_address_adds_the_port_kserve_clients_use(host, use_ssl, address):
    assert predictor_address(host, use_ssl=use_ssl) == address


@pytest.mark.parametrize("host", ["", "  ", "p.ns/v2/models"])
def test_a_predictor_host_that_is_not_a_host_is_refused(host):
    with pytest.raises(ValueError, match="host name"):
        predictor_address(host)


def test_kserves_own_parser_keeps_its_defaults():
    """hyperrec's parser shares KServe's argument objects; telling 'given' from 'default' must not change
    them."""
    from kserve import model_server

    parse_args(["transformer", "--predictor_protocol", "v2"])
    defaults = {a.dest: a.default for a in model_server.parser._actions}
    assert defaults["predictor_protocol"] == "v1" and defaults["protocol"] == "v1"
    assert defaults["predictor_host"] is None


def test_main_exits_with_a_usage_error_before_serving(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["transformer", "--bundle", "/nonexistent", "--predictor_protocol", "v1"])
    assert caught.value.code == 2
    assert "V2 protocol" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- predictor
# pairing


def triton_metadata(n_items: int, name: str = "ranker") -> dict:
    """What Triton answers for the bundle's generated config (checked against a real tritonserver)."""
    return {
        "name": name, "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "history", "datatype": "INT64", "shape": [-1, 8]},
                   {"name": "segment", "datatype": "INT64", "shape": [-1, 1]}],
        "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, n_items]}],
    }


@pytest.mark.parametrize(
    ("metadata", "state", "says"),
    [
        (triton_metadata(60), "paired", "fits 60 items"),
        (triton_metadata(61), "mismatch", "scores 61 items"),
        ({"outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 60]}]}, "mismatch", "no 'scores'"),
        (
            {"outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, -1]}]},
            "unknown",
            "no fixed item axis",
        ),
        ({"outputs": []}, "unknown", "still loading"),
        ({"name": "ranker"}, "unknown", "lists no outputs"),
    ],
)
def test_check_pairing_compares_the_scores_item_axis_with_the_catalogue(metadata, state, says):
    pairing = check_pairing(metadata, n_items=60, model_name="ranker")
    assert pairing.state == state and says in pairing.detail


class FakeInner:
    def __init__(self, n_items: int = 60):
        self.calls = 0
        self.n_items = n_items
        self.closed = False

    async def score(self, inputs, request_id):
        self.calls += 1
        return np.zeros((1, self.n_items), dtype=np.float32)

    async def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def metric(name: str, **labels) -> float:
    """A sample of the default registry; these scorers are built without a revision (label "")."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, {"revision": "", **labels}) or 0.0


INPUTS = {"history": np.zeros((1, 8), dtype=np.int64), "segment": np.zeros(1, dtype=np.int64)}


def test_a_mismatched_predictor_is_refused_counted_and_flagged():
    inner = FakeInner()
    scorer = PairedScorer(inner, transformer_name="t-mismatch", model_name="ranker", n_items=60,
                          fetch_metadata=lambda: triton_metadata(75))
    before = metric("hyperrec_errors_total", model="t-mismatch", kind="predictor_mismatch")
    assert scorer.check().state == "mismatch"
    assert metric("hyperrec_predictor_mismatch", model="t-mismatch") == 1

    with pytest.raises(PredictorUnavailable, match="scores 75 items"):
        asyncio.run(scorer.score(INPUTS, "r1"))
    assert inner.calls == 0  # the predictor's scores never reach the ranking
    assert metric("hyperrec_errors_total", model="t-mismatch", kind="predictor_mismatch") == before + 1


def test_a_paired_predictor_scores_and_an_unreachable_one_is_checked_per_response():
    inner = FakeInner()
    paired = PairedScorer(inner, transformer_name="t-paired", model_name="ranker", n_items=60,
                          fetch_metadata=lambda: triton_metadata(60))
    assert paired.check().state == "paired"
    assert asyncio.run(paired.score(INPUTS, "r1")).shape == (1, 60)

    def unreachable():
        raise ConnectionRefusedError("connection refused")

    unknown = PairedScorer(inner, transformer_name="t-unknown", model_name="ranker", n_items=60,
                           fetch_metadata=unreachable)
    pairing = unknown.check()
    assert pairing.state == "unknown" and "ConnectionRefusedError" in pairing.detail
    assert metric("hyperrec_predictor_mismatch", model="t-unknown") == 0
    asyncio.run(unknown.score(INPUTS, "r2"))
    assert inner.calls == 2


def test_the_check_is_repeated_in_the_background_and_recovers_after_a_rollout():
    clock, answers = Clock(), [triton_metadata(75)]
    inner = FakeInner()
    scorer = PairedScorer(inner, transformer_name="t-recover", model_name="ranker", n_items=60,
                          fetch_metadata=lambda: answers[-1], recheck_s=30, recheck_soon_s=5, clock=clock)
    assert scorer.check().state == "mismatch" and not scorer.due()

    async def run():
        answers.append(triton_metadata(60))  # the rollout finished: the predictor now serves our bundle
        clock.now += 5
        with pytest.raises(PredictorUnavailable):  # the request in flight does not wait for the check
            await scorer.score(INPUTS, "r1")
        assert scorer._refresh is not None
        await scorer._refresh
        assert scorer.pairing.state == "paired"
        await scorer.score(INPUTS, "r2")
        clock.now += 29
        assert not scorer.due()  # paired: checked every recheck_s only
        await scorer.close()

    asyncio.run(run())
    assert inner.calls == 1 and inner.closed
    assert metric("hyperrec_predictor_mismatch", model="t-recover") == 0


def test_a_failed_predictor_call_brings_the_next_check_forward():
    clock = Clock()

    class Failing(FakeInner):
        async def score(self, inputs, request_id):
            raise PredictorUnavailable("predictor scores have shape (1, 75); expected (1, 60)")

    scorer = PairedScorer(
        Failing(),
        transformer_name="t-suspect",
        model_name="ranker",
        n_items=60,
        fetch_metadata=lambda: triton_metadata(60),
        recheck_s=30,
        recheck_soon_s=5,
        clock=clock,
    )
    scorer.check()
    clock.now += 5
    assert not scorer.due()
    with pytest.raises(PredictorUnavailable):
        asyncio.run(scorer.score(INPUTS, "r1"))
    assert scorer.due()


def test_the_transformer_answers_degraded_rather_than_ranking_another_catalogue(
    demo_bundle, serving_settings
):
    """End to end through KServe's REST app: the default scorer factory with a predictor serving 61 items."""
    seen = []

    def fetch(model_name):
        seen.append(model_name)
        return triton_metadata(61, model_name)

    models = build_models("transformer", demo_bundle, serving_settings(), model_name="t-e2e",
                          pseudonymize=fake_pseudonymize,
                          scorer_factory=paired_scorer_factory(serving_settings(), transformer_name="t-e2e",
                                                               fetch_metadata=fetch))
    for model in models:
        model.load()  # the load checks the predictor once
    assert seen == ["ranker"]  # the bundle's model name: what Triton serves
    client = make_server(models)
    response = client.post("/v1/models/t-e2e:predict", json={"user_id": "u", "history": ["m00001"], "k": 4})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["degraded"] is True and answer["degraded_reason"] == "predictor_unavailable"
    assert answer["source"] == "popular" and len(answer["recommendations"]) == 4
    text = client.get("/metrics").text
    assert 'hyperrec_errors_total{kind="predictor_mismatch",model="t-e2e",revision=""} 1.0' in text
    assert 'hyperrec_predictor_mismatch{model="t-e2e",revision=""} 1.0' in text


def test_the_transformer_uses_a_paired_predictors_scores(demo_bundle, serving_settings):
    onnx = OnnxScorer(None, demo_bundle)
    factory = paired_scorer_factory(serving_settings(), transformer_name="t-ok",
                                    fetch_metadata=lambda name: triton_metadata(60, name))

    def with_onnx(manifest):
        scorer = factory(manifest)
        scorer.inner = onnx  # the real V2 client needs a socket; the pairing logic is what is under test
        return scorer

    models = build_models("transformer", demo_bundle, serving_settings(), model_name="t-ok",
                          pseudonymize=fake_pseudonymize, scorer_factory=with_onnx)
    for model in models:
        model.load()
    answer = (
        make_server(models)
        .post("/v1/models/t-ok:predict", json={"user_id": "u", "history": ["m00001"]})
        .json()
    )
    assert answer["source"] == "model" and answer["degraded"] is False
    assert len(onnx.calls) == 1
    assert metric("hyperrec_errors_total", model="t-ok", kind="predictor_mismatch") == 0
