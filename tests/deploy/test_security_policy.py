"""Secure defaults on every pod the manifests create, the KServe components included.

checkov (test_checkov.py) does not look inside custom resources such as the InferenceService, so the
same rules are checked here on every pod spec of every build: kustomize and Helm alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from deploy_render import HELM_SCENARIOS, MANIFESTS, Build, kustomizations, object_id, pod_specs

BUILDS = [
    *(("kustomize", str(p.relative_to(MANIFESTS))) for p in kustomizations()),
    *(("helm", scenario) for scenario in HELM_SCENARIOS),
]
GPU = "nvidia.com/gpu"


def _build(source: str, name: str, kustomize_builds, helm_renders) -> Build:
    return (kustomize_builds if source == "kustomize" else helm_renders)[name]


def _container_problems(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:  # noqa: C901 (a flat checklist)
    pod_context = pod.get("securityContext", {})
    context = container.get("securityContext", {})

    def effective(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    problems = []
    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if effective("runAsUser") == 0:
        problems.append("runs as uid 0")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if context.get("privileged"):
        problems.append("privileged")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("root filesystem is writable")
    if "ALL" not in context.get("capabilities", {}).get("drop", []):
        problems.append("capabilities are not dropped (drop: [ALL])")
    if context.get("capabilities", {}).get("add"):
        problems.append(f"adds capabilities {context['capabilities']['add']}")
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("seccompProfile is not RuntimeDefault")
    resources = container.get("resources", {})
    for side in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(side, {}):
                problems.append(f"no {resource} {side[:-1]}")
    image = container.get("image")
    if image is not None and (image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]):
        problems.append(f"image {image} is not pinned to a tag")
    return problems


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_every_container_runs_locked_down(source, name, kustomize_builds, helm_renders):
    problems = []
    for obj in _build(source, name, kustomize_builds, helm_renders).objects:
        for pod, containers in pod_specs(obj):
            for container in containers:
                label = f"{object_id(obj)} container {container.get('name', '<model>')}"
                problems += [f"{label}: {p}" for p in _container_problems(pod, container)]
            if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
                problems.append(f"{object_id(obj)}: shares a host namespace")
            if any("hostPath" in volume for volume in pod.get("volumes", [])):
                problems.append(f"{object_id(obj)}: mounts a hostPath")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_service_account_tokens_are_not_mounted_by_default(source, name, kustomize_builds, helm_renders):
    """Nothing here calls the Kubernetes API; the drift monitor's KFP token is a projected volume."""
    build = _build(source, name, kustomize_builds, helm_renders)
    for obj in build.objects:
        if obj["kind"] == "ServiceAccount":
            assert obj.get("automountServiceAccountToken") is False, object_id(obj)
        if obj["kind"] in {"Pod", "CronJob"}:
            pod, _ = next(pod_specs(obj))
            assert pod.get("automountServiceAccountToken") is False, object_id(obj)


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_only_the_predictor_asks_for_gpus_and_then_lands_on_the_gpu_pool(
    source, name, kustomize_builds, helm_renders
):
    for obj in _build(source, name, kustomize_builds, helm_renders).objects:
        for pod, containers in pod_specs(obj):
            for container in containers:
                resources = container.get("resources", {})
                gpus = resources.get("limits", {}).get(GPU)
                if gpus is None:
                    assert GPU not in resources.get("requests", {}), object_id(obj)
                    continue
                assert obj["kind"] == "InferenceService" and pod is obj["spec"]["predictor"], object_id(obj)
                assert resources["requests"].get(GPU) == gpus, f"{object_id(obj)}: GPU request != limit"
                assert pod.get("nodeSelector"), f"{object_id(obj)}: GPU pod without a node selector"
                assert any(t.get("key") == GPU for t in pod.get("tolerations", [])), object_id(obj)


@pytest.mark.parametrize("name", ["components/cpu-only", "overlays/local"])
def test_cpu_only_builds_request_no_gpu(kustomize_builds, name):
    assert GPU not in str(kustomize_builds[name].objects)


def test_cpu_only_helm_render_requests_no_gpu(helm_renders):
    assert GPU not in str(helm_renders["local-cpu-only"].objects)


@pytest.mark.parametrize(("source", "name"), BUILDS, ids=[f"{s}:{n}" for s, n in BUILDS])
def test_roles_grant_no_wildcards_and_no_secrets(source, name, kustomize_builds, helm_renders):
    for obj in _build(source, name, kustomize_builds, helm_renders).objects:
        if obj["kind"] in {"Role", "ClusterRole"}:
            for rule in obj["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule.get(field, []), f"{object_id(obj)}: wildcard {field}"
                assert "secrets" not in rule.get("resources", []), object_id(obj)
        assert obj["kind"] not in {"ClusterRole", "ClusterRoleBinding"}, (
            f"{object_id(obj)}: cluster-wide RBAC"
        )
