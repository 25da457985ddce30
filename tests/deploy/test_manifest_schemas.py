"""Every rendered object is valid for its kind: custom resources against the published CRD schemas,
built-in kinds against Kubernetes' own OpenAPI schemas (kubernetes-validate, strict: unknown fields fail),
and the Prometheus Operator's PodMonitor and PrometheusRule, whose CRDs are not published in ../shared/crds,
against the minimal structural schema of deploy_operator_schema.py."""

from __future__ import annotations

import pytest
import yaml
from deploy_operator_schema import GROUP as OPERATOR_GROUP
from deploy_operator_schema import operator_errors
from deploy_render import (
    HELM_SCENARIOS,
    MANIFESTS,
    PARITY,
    Build,
    kustomizations,
    object_id,
    parity_build_name,
)

# API groups whose kinds come from CRDs (validated against HYPERREC_CRDS_DIR); every other group is built in.
CUSTOM_GROUPS = {"serving.kserve.io", "argoproj.io"}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema set shipped.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
BUILDS = [
    *(("kustomize", str(p.relative_to(MANIFESTS))) for p in kustomizations()),
    *(("kustomize", parity_build_name(s)) for s, (_, extra) in PARITY.items() if extra),
    *(("helm", scenario) for scenario in HELM_SCENARIOS),
]


def _build(source: str, name: str, kustomize_builds, helm_renders) -> Build:
    return (kustomize_builds if source == "kustomize" else helm_renders)[name]


def _is_custom(obj: dict) -> bool:
    return obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS


def _is_operator(obj: dict) -> bool:
    return obj["apiVersion"].split("/")[0] == OPERATOR_GROUP


@pytest.fixture(scope="module")
def kubernetes_validate():
    return pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_custom_resources_match_their_crds(source, name, kustomize_builds, helm_renders, crd_validators):
    problems = []
    for obj in _build(source, name, kustomize_builds, helm_renders).objects:
        if not _is_custom(obj):
            continue
        validator = crd_validators.get((obj["apiVersion"], obj["kind"]))
        if validator is None:
            problems.append(f"{object_id(obj)}: no published CRD serves {obj['apiVersion']} {obj['kind']}")
        else:
            problems += [f"{object_id(obj)}: {p}" for p in validator.errors(obj)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_builtin_kinds_match_kubernetes_schemas(
    source, name, kustomize_builds, helm_renders, kubernetes_validate
):
    """Each built-in object must have a Kubernetes schema, and pass it in strict mode."""
    problems = []
    for obj in _build(source, name, kustomize_builds, helm_renders).objects:
        if _is_custom(obj) or _is_operator(obj):
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(
                    f"{object_id(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in {version}"
                )
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                problems.append(f"{object_id(obj)} (Kubernetes {version}): {path}: {exc.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_prometheus_operator_objects_match_the_minimal_schema(source, name, kustomize_builds, helm_renders):
    problems = [
        f"{object_id(obj)}: {p}"
        for obj in _build(source, name, kustomize_builds, helm_renders).objects
        if _is_operator(obj)
        for p in operator_errors(obj)
    ]
    assert not problems, "\n".join(problems)


def test_the_minimal_operator_schema_catches_a_misspelt_field(kustomize_builds):
    monitor = next(o for o in kustomize_builds["overlays/prod"].objects if o["kind"] == "PodMonitor")
    broken = yaml.safe_load(yaml.safe_dump(monitor))
    broken["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["source_labels"] = ["x"]
    assert any("source_labels" in e for e in operator_errors(broken))


def test_crd_validation_catches_a_misspelt_field_and_a_wrong_type(kustomize_builds, crd_validators):
    """The offline CRD check is strict where an API server would silently prune."""
    isvc = next(o for o in kustomize_builds["overlays/prod"].objects if o["kind"] == "InferenceService")
    broken = yaml.safe_load(yaml.safe_dump(isvc))
    broken["spec"]["predictor"]["model"]["storageUrl"] = broken["spec"]["predictor"]["model"].pop(
        "storageUri"
    )
    broken["spec"]["predictor"]["minReplicas"] = "two"
    errors = crd_validators[("serving.kserve.io/v1beta1", "InferenceService")].errors(broken)
    assert any("storageUrl" in e for e in errors), errors
    assert any(e.startswith("spec.predictor.minReplicas") for e in errors), errors


def test_the_argo_cd_application_matches_its_crd(crd_validators):
    app = yaml.safe_load((MANIFESTS / "argocd" / "application.yaml").read_text())
    assert not crd_validators[(app["apiVersion"], app["kind"])].errors(app)
