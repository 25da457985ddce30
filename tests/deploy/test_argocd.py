"""The Argo CD Application is valid and deploys an overlay that exists and builds."""

from __future__ import annotations

import yaml
from deploy_render import MANIFESTS, REPO_ROOT, Build, is_component

APPLICATION = MANIFESTS / "argocd" / "application.yaml"


def _app() -> dict:
    return yaml.safe_load(APPLICATION.read_text())


def test_application_points_at_an_overlay_that_builds(kustomize_builds: dict[str, Build]):
    source = _app()["spec"]["source"]
    path = REPO_ROOT / source["path"]
    assert (path / "kustomization.yaml").is_file(), f"{source['path']} is not a kustomization"
    assert not is_component(path), "Argo CD cannot build a Component"
    assert kustomize_builds[str(path.relative_to(MANIFESTS))].objects


def test_application_deploys_into_the_overlay_namespace():
    app = _app()
    overlay = yaml.safe_load((REPO_ROOT / app["spec"]["source"]["path"] / "kustomization.yaml").read_text())
    assert app["spec"]["destination"]["namespace"] == overlay["namespace"]
    assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"


def test_application_syncs_automatically_from_a_branch_of_this_repository():
    spec = _app()["spec"]
    assert spec["source"]["repoURL"].startswith("https://") and spec["source"]["repoURL"].endswith(".git")
    assert spec["source"]["targetRevision"]
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]


def test_application_is_not_part_of_any_kustomization():
    """It is applied once to Argo CD's namespace, not synced by itself."""
    for kustomization in MANIFESTS.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        used = [*spec.get("resources", []), *spec.get("components", [])]
        assert not [entry for entry in used if "argocd" in entry], kustomization
    assert not (MANIFESTS / "argocd" / "kustomization.yaml").exists()
