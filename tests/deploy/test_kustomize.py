"""Every kustomization builds with the real kustomize, and base / components / overlays keep their roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_render import MANIFESTS, Build, is_component, kustomizations, object_id, pod_specs

KUSTOMIZATIONS = [str(path.relative_to(MANIFESTS)) for path in kustomizations()]
OVERLAYS = [name for name in KUSTOMIZATIONS if name.startswith("overlays/")]
# Objects a build may refer to without containing them: created out of band (docs/DEPLOY.md).
EXTERNAL_SECRETS = {"hyperrec-pseudonym-key"}


def _kustomization(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / name / "kustomization.yaml").read_text())


def _only(build: Build, kind: str) -> dict[str, Any]:
    found = [obj for obj in build.objects if obj["kind"] == kind]
    assert len(found) == 1, f"{build.name}: expected one {kind}, found {[object_id(o) for o in found]}"
    return found[0]


def test_the_expected_kustomizations_exist():
    assert {"base", "overlays/local", "overlays/gpu", "overlays/prod"} <= set(KUSTOMIZATIONS)
    assert {"components/canary", "components/cpu-only", "components/monitoring"} <= set(KUSTOMIZATIONS)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomization_builds(kustomize_builds: dict[str, Build], name: str):
    build = kustomize_builds[name]
    assert build.objects, f"{name} built to nothing"
    assert all({"apiVersion", "kind", "metadata"} <= obj.keys() for obj in build.objects)


def test_base_is_namespace_agnostic(kustomize_builds: dict[str, Build]):
    assert "namespace" not in _kustomization("base")
    namespaced = [
        object_id(obj) for obj in kustomize_builds["base"].objects if "namespace" in obj["metadata"]
    ]
    assert not namespaced


@pytest.mark.parametrize("name", [n for n in KUSTOMIZATIONS if n.startswith("components/")])
def test_features_are_components(name: str):
    assert is_component(MANIFESTS / name), f"{name} must be `kind: Component`"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_only_patch(overlay: str):
    """An overlay reuses the base and components; it sets a namespace, images and patches, nothing more."""
    spec = _kustomization(overlay)
    assert spec["resources"] == ["../../base"], f"{overlay} must add no resources of its own"
    assert all(c.startswith("../../components/") for c in spec.get("components", []))
    assert spec.get("namespace"), f"{overlay} must set the namespace"
    allowed = {"apiVersion", "kind", "namespace", "resources", "components", "images", "patches"}
    assert set(spec) <= allowed, f"{overlay} uses {sorted(set(spec) - allowed)}"
    files = {p.name for p in (MANIFESTS / overlay).iterdir()}
    assert files == {"kustomization.yaml"}, f"{overlay} holds extra files {sorted(files)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_objects_live_in_its_namespace(kustomize_builds: dict[str, Build], overlay: str):
    namespace = _kustomization(overlay)["namespace"]
    wrong = [
        object_id(o) for o in kustomize_builds[overlay].objects if o["metadata"].get("namespace") != namespace
    ]
    assert not wrong


def test_canary_component_splits_predictor_traffic(kustomize_builds: dict[str, Build]):
    base = _only(kustomize_builds["base"], "InferenceService")
    canary = _only(kustomize_builds["components/canary"], "InferenceService")
    assert "canaryTrafficPercent" not in base["spec"]["predictor"]
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert canary["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"


def test_cpu_only_component_drops_every_gpu_setting(kustomize_builds: dict[str, Build]):
    predictor = _only(kustomize_builds["components/cpu-only"], "InferenceService")["spec"]["predictor"]
    assert "nvidia.com/gpu" not in yaml.safe_dump(predictor)
    assert "nodeSelector" not in predictor and "tolerations" not in predictor
    assert predictor["model"]["resources"]["requests"]["cpu"]


def test_monitoring_component_wires_cronjob_rbac_and_network_policy(kustomize_builds: dict[str, Build]):
    build = kustomize_builds["components/monitoring"]
    cronjob = _only(build, "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    account = pod["spec"]["serviceAccountName"]
    binding = _only(build, "RoleBinding")
    role = _only(build, "Role")
    policy = next(
        o for o in build.objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "hyperrec-drift"
    )

    command = pod["spec"]["containers"][0]["command"]
    assert command[:4] == ["hyperrec", "drift", "--config", "/etc/hyperrec/config.yaml"]
    assert "--trigger" in command
    feedback = next(m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "feedback")
    assert command[command.index("--current") + 1] == feedback["mountPath"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert {s["name"] for s in binding["subjects"]} == {account}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert {g for rule in role["rules"] for g in rule["apiGroups"]} == {"pipelines.kubeflow.org"}
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    token = next(v for v in pod["spec"]["volumes"] if v["name"] == "kfp-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"


def test_kfp_recurring_run_is_not_a_kubernetes_resource(kustomize_builds: dict[str, Build]):
    monitoring = _kustomization("components/monitoring")
    assert "kfp-recurring-run.yaml" not in monitoring.get("resources", [])
    assert (MANIFESTS / "components" / "monitoring" / "kfp-recurring-run.yaml").is_file()
    for build in kustomize_builds.values():
        assert not [o for o in build.objects if "display_name" in o or "trigger" in o]


def _references(obj: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret, PVC and ServiceAccount the object's pods use."""
    refs: set[tuple[str, str]] = set()
    for spec, containers in pod_specs(obj):
        if spec.get("serviceAccountName"):
            refs.add(("ServiceAccount", spec["serviceAccountName"]))
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                refs.add(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                refs.add(("Secret", volume["secret"]["secretName"]))
            if "persistentVolumeClaim" in volume:
                refs.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for container in containers:
            for env in container.get("env", []):
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret:
                    refs.add(("Secret", secret["name"]))
    return refs


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_reference_resolves_inside_the_build(kustomize_builds: dict[str, Build], name: str):
    """Catches a generated (hashed) ConfigMap name that did not reach a custom resource, and typos."""
    build = kustomize_builds[name]
    present = {(o["kind"], o["metadata"]["name"]) for o in build.objects}
    for obj in build.objects:
        missing = {
            ref
            for ref in _references(obj) - present
            if not (ref[0] == "Secret" and ref[1] in EXTERNAL_SECRETS)
        }
        assert not missing, f"{name}: {object_id(obj)} refers to missing {sorted(missing)}"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_selectors_target_this_inference_service(kustomize_builds: dict[str, Build], name: str):
    build = kustomize_builds[name]
    services = {o["metadata"]["name"] for o in build.objects if o["kind"] == "InferenceService"}
    for obj in build.objects:
        if obj["kind"] in {"PodDisruptionBudget", "NetworkPolicy"}:
            selector = (obj["spec"].get("selector") or obj["spec"]["podSelector"]).get("matchLabels", {})
            target = selector.get("serving.kserve.io/inferenceservice")
            assert target is None or target in services, f"{name}: {object_id(obj)} selects {target}"


def test_overlay_directories_are_the_documented_three():
    assert sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir()) == [
        "gpu",
        "local",
        "prod",
    ]


def test_no_kustomization_file_is_orphaned():
    """Every YAML file in a kustomization directory is listed by it (or is the documented KFP body)."""
    for directory in kustomizations():
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
        listed = set(spec.get("resources", []))
        listed |= {f for generator in spec.get("configMapGenerator", []) for f in generator.get("files", [])}
        listed |= set(spec.get("configurations", []))
        listed |= {"kustomization.yaml", "kfp-recurring-run.yaml"}
        orphans = {p.name for p in Path(directory).glob("*.yaml")} - listed
        assert not orphans, f"{directory.relative_to(MANIFESTS)} does not use {sorted(orphans)}"
