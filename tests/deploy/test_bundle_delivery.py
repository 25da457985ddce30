"""The transformer gets the same bundle as the predictor, and finds the predictor where KServe puts it.

- Bundle delivery: the predictor's ``storageUri`` is ``<bundle root>/triton`` (Triton's repository), the
  transformer's ``storageUris`` is ``<bundle root>/`` (KServe's storage initializer downloads it), mounted
  where the config's ``serving.bundle_dir`` looks, in every kustomize build and Helm render.
- Canary: both components split traffic alike, so one change rolls the pair forward or back.
- Predictor address: the rendered transformer args, plus what KServe's controller appends to them
  (``--model_name``, ``--predictor_host <name>-predictor.<namespace>``, ``--http_port``), parsed by
  ``python -m hyperrec.serving``'s own parser, name the predictor's Service on port 80 over the rendered
  protocol.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deploy_render import Build, deep_merge, manifests_of, object_id, render_chart

STORAGE = {"predictor": {"storageUri": "s3://hyperrec-models/hyperrec-ranker/1/triton"}}
#: The KServe V2 protocol names → serving.predictor_protocol (serving/__main__.py PROTOCOLS).
PROTOCOLS = {"grpc-v2": "grpc", "v2": "http"}


def _services(build: Build) -> list[dict[str, Any]]:
    return [o for o in build.objects if o["kind"] == "InferenceService"]


def _config(build: Build) -> dict[str, Any]:
    (config_map,) = [
        o
        for o in build.objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("hyperrec-config")
    ]
    return yaml.safe_load(config_map["data"]["config.yaml"])


def test_the_transformer_downloads_the_root_of_the_bundle_the_predictor_serves(all_builds):
    checked = 0
    for build in all_builds:
        for isvc in _services(build):
            predictor_uri = isvc["spec"]["predictor"]["model"]["storageUri"]
            storage = isvc["spec"]["transformer"].get("storageUris")
            where = f"{build.name}: {object_id(isvc)}"
            assert storage and len(storage) == 1, f"{where}: the transformer gets no bundle"
            (bundle,) = storage
            assert predictor_uri.rstrip("/").endswith("/triton"), f"{where}: {predictor_uri}"
            assert bundle["uri"] + "triton" == predictor_uri.rstrip("/"), (
                f"{where}: transformer bundle {bundle['uri']} is not the root of the predictor's "
                f"{predictor_uri}"
            )
            assert bundle["uri"].endswith("/"), f"{where}: without the slash, .../1 also matches .../10/..."
            checked += 1
    assert checked >= 8


def test_the_config_reads_the_bundle_where_it_is_mounted(all_builds):
    for build in all_builds:
        for isvc in _services(build):
            (bundle,) = isvc["spec"]["transformer"]["storageUris"]
            assert _config(build)["serving"]["bundle_dir"] == bundle["mountPath"], build.name
            mounts = {
                m["mountPath"] for c in isvc["spec"]["transformer"]["containers"] for m in c["volumeMounts"]
            }
            assert bundle["mountPath"] not in mounts, f"{build.name}: KServe adds the bundle's mount itself"


def test_the_prod_overlay_serves_one_bundle_version(kustomize_builds):
    (isvc,) = _services(kustomize_builds["overlays/prod"])
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://hyperrec-models/hyperrec-ranker/3/triton"
    assert isvc["spec"]["transformer"]["storageUris"][0]["uri"] == "s3://hyperrec-models/hyperrec-ranker/3/"


def test_canary_splits_the_transformer_and_the_predictor_alike(all_builds):
    seen = set()
    for build in all_builds:
        for isvc in _services(build):
            shares = {c: isvc["spec"][c].get("canaryTrafficPercent") for c in ("predictor", "transformer")}
            assert shares["predictor"] == shares["transformer"], f"{build.name}: {shares}"
            seen.add(shares["predictor"])
    assert {None, 10} <= seen


def _args_on_the_cluster(isvc: dict[str, Any], namespace: str) -> list[str]:
    """The transformer's args as its pod gets them: rendered args + what KServe's controller appends
    (pkg/apis/serving/v1beta1/transformer_custom.go: --model_name, --predictor_host, --http_port)."""
    container = isvc["spec"]["transformer"]["containers"][0]
    name = isvc["metadata"]["name"]
    assert container["command"] == ["python", "-m", "hyperrec.serving"]
    return [*container["args"], "--model_name", name, "--predictor_host", f"{name}-predictor.{namespace}",
            "--http_port", "8080"]


def test_the_transformer_calls_the_predictor_kserve_names(all_builds):
    """Rendered args → hyperrec's parser → the address and transport the V2 client will use."""
    main = pytest.importorskip("hyperrec.serving.__main__")
    from hyperrec.config import config_from_dict

    for build in all_builds:
        for isvc in _services(build):
            namespace = isvc["metadata"].get("namespace", "default")
            name = isvc["metadata"]["name"]
            settings = config_from_dict(_config(build), source=build.name).serving
            args = main.parse_args(_args_on_the_cluster(isvc, namespace))
            resolved = main.apply_predictor_flags(settings, args)
            assert resolved.predictor_url == f"{name}-predictor.{namespace}:80", build.name
            protocol = isvc["spec"]["predictor"]["model"]["protocolVersion"]
            assert resolved.predictor_protocol == PROTOCOLS[protocol], build.name
            assert resolved.predictor_protocol == settings.predictor_protocol, (
                f"{build.name}: the config says {settings.predictor_protocol}, the args {protocol}"
            )
            assert (args.role, args.model_name) == ("transformer", name)
            assert (args.bundle or resolved.bundle_dir) is not None


def test_grpc_reaches_triton_through_the_predictors_single_port(all_builds):
    """Knative exposes one port per revision; with grpc-v2 it must be h2c on Triton's gRPC port."""
    for build in all_builds:
        for isvc in _services(build):
            model = isvc["spec"]["predictor"]["model"]
            if model["protocolVersion"] == "grpc-v2":
                assert [p["name"] for p in model["ports"]] == ["h2c"], build.name


# --------------------------------------------------------------------------------------------- Helm values


def _isvc(helm, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    objects = manifests_of(render_chart(helm, values, "hyperrec"))
    isvc = next(o for o in objects if o["kind"] == "InferenceService")
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    return isvc, yaml.safe_load(config_map["data"]["config.yaml"])


@pytest.mark.parametrize(
    ("storage_uri", "root"),
    [
        ("s3://hyperrec-models/hyperrec-ranker/7/triton", "s3://hyperrec-models/hyperrec-ranker/7/"),
        ("gs://models/ranker/12/triton/", "gs://models/ranker/12/"),
    ],
)
def test_helm_derives_the_bundle_root_from_predictor_storage_uri(helm, storage_uri, root):
    isvc, _ = _isvc(helm, {"predictor": {"storageUri": storage_uri}})
    assert isvc["spec"]["transformer"]["storageUris"] == [{"uri": root, "mountPath": "/mnt/models"}]


def test_helm_bundle_mount_path_reaches_the_config(helm):
    isvc, config = _isvc(helm, deep_merge(STORAGE, {"transformer": {"bundleMountPath": "/srv/bundle"},
                                                    "config": {"serving": {"bundle_dir": "/elsewhere"}}}))
    assert isvc["spec"]["transformer"]["storageUris"][0]["mountPath"] == "/srv/bundle"
    assert config["serving"]["bundle_dir"] == "/srv/bundle"


def test_helm_refuses_a_storage_uri_that_is_not_a_bundles_triton_folder(helm):
    with pytest.raises(helm.HelmValuesError) as caught:
        render_chart(
            helm, {"predictor": {"storageUri": "s3://hyperrec-models/hyperrec-ranker/1"}}, "hyperrec"
        )
    assert "/predictor/storageUri" in str(caught.value)


def test_helm_protocol_value_drives_the_transformer_flag(helm):
    isvc, _ = _isvc(helm, deep_merge(STORAGE, {"predictor": {"protocolVersion": "v2"}}))
    args = isvc["spec"]["transformer"]["containers"][0]["args"]
    assert args[args.index("--predictor_protocol") + 1] == "v2"
