"""What the manifests hand to hyperrec itself: the config YAML, the pseudonym key, the feedback path and
the GPU pool all agree with hyperrec's code and with each other."""

from __future__ import annotations

import re
import subprocess
import tempfile
import tomllib

import pytest
import yaml
from deploy_render import MANIFESTS, REPO_ROOT, Build, pod_specs

BUILD_NAMES = ["base", "overlays/local", "overlays/gpu", "overlays/prod"]


def _config_maps(build: Build) -> list[dict]:
    return [
        o
        for o in build.objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("hyperrec-config")
    ]


def test_every_rendered_config_loads_with_hyperrec(kustomize_builds, helm_renders):
    config = pytest.importorskip("hyperrec.config")
    builds = [kustomize_builds[n] for n in BUILD_NAMES] + list(helm_renders.values())
    for build in builds:
        (config_map,) = _config_maps(build)
        tree = yaml.safe_load(config_map["data"]["config.yaml"])
        config.config_from_dict(tree, source=f"{build.name} ConfigMap")  # raises ConfigError on unknown keys


# What the drift CronJob's `hyperrec drift --trigger` needs from its config (docs/MONITORING.md, "Schedules").
CRONJOB_NEEDS = (
    "monitoring.sources.reference", "monitoring.windows.current_days", "monitoring.trigger.kfp.host",
    "monitoring.trigger.kfp.pipeline_id", "monitoring.trigger.kfp.pipeline_version_id",
    "monitoring.trigger.kfp.reference_uri", "monitoring.trigger.kfp.current_uri", "tracking.tracking_uri",
)


def _drift_pod_config(build: Build, drop: str | None = None):
    """The config the drift CronJob's pod loads: the ConfigMap's YAML, then the container's HYPERREC__ env (a
    value taken from a ConfigMap or Secret at run time stands as a placeholder); ``drop`` removes one setting
    from whichever of the two gives it."""
    from hyperrec.config import ENV_PREFIX, config_from_dict, load_config

    (config_map,) = _config_maps(build)
    tree = yaml.safe_load(config_map["data"]["config.yaml"])
    cronjob = next(o for o in build.objects if o["kind"] == "CronJob")
    ((_, (container,)),) = pod_specs(cronjob)
    env = {var["name"]: var.get("value", f"from-{build.name}") for var in container.get("env", [])
           if var["name"].startswith(ENV_PREFIX)}
    if drop is not None:
        env.pop(ENV_PREFIX + drop.upper().replace(".", "__"), None)
        *sections, key = drop.split(".")
        node = tree
        for section in sections:
            node = node.get(section, {})
        node.pop(key, None)
    config_path = f"{build.name} ConfigMap"
    config_from_dict(tree, source=config_path)  # clear error on unknown keys first
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        yaml.safe_dump(tree, handle)
        handle.flush()
        return load_config(handle.name, environ=env)


def cronjob_config_problems(cfg) -> list[str]:
    """What keeps the drift CronJob from checking and starting a retraining run that can import its inputs."""
    from hyperrec.monitoring.settings import is_kfp_importable

    problems = []
    for dotted in CRONJOB_NEEDS:
        node = cfg
        for part in dotted.split("."):
            node = getattr(node, part)
        if node is None:
            problems.append(f"{dotted} is not set")
    reference = cfg.monitoring.sources.reference
    if reference is not None and not is_kfp_importable(str(reference)):
        problems.append(f"monitoring.sources.reference {reference!r}: the pod mounts no reference data")
    tracking = cfg.tracking.tracking_uri or ""
    if tracking and not tracking.startswith(("http://", "https://")):
        problems.append(f"tracking.tracking_uri {tracking!r}: the pod's files do not outlive it")
    return problems


def _builds_with_the_cronjob(kustomize_builds, helm_renders) -> list[Build]:
    builds = [*kustomize_builds.values(), *helm_renders.values()]
    return [b for b in builds if any(o["kind"] == "CronJob" for o in b.objects) and _config_maps(b)]


def test_every_drift_cronjob_gets_a_config_it_can_retrain_with(kustomize_builds, helm_renders):
    builds = _builds_with_the_cronjob(kustomize_builds, helm_renders)
    assert {b.source for b in builds} == {"kustomize", "helm"}
    for build in builds:
        assert cronjob_config_problems(_drift_pod_config(build)) == [], build.name


@pytest.mark.parametrize("setting", CRONJOB_NEEDS)
def test_a_config_without_what_the_cronjob_needs_fails(kustomize_builds, setting):
    build = kustomize_builds["overlays/prod"]
    assert f"{setting} is not set" in cronjob_config_problems(_drift_pod_config(build, drop=setting))


def test_transformer_gets_the_pseudonym_key_under_the_configured_env_var(kustomize_builds, helm_renders):
    for build in [kustomize_builds["overlays/prod"], helm_renders["prod"]]:
        (config_map,) = _config_maps(build)
        env_name = yaml.safe_load(config_map["data"]["config.yaml"])["privacy"]["pseudonym_key_env"]
        isvc = next(o for o in build.objects if o["kind"] == "InferenceService")
        env = {e["name"]: e for e in isvc["spec"]["transformer"]["containers"][0]["env"]}
        assert env[env_name]["valueFrom"]["secretKeyRef"]["name"] == "hyperrec-pseudonym-key", build.name


def test_feedback_log_path_is_the_same_for_writer_and_reader(kustomize_builds):
    build = kustomize_builds["overlays/prod"]
    isvc = next(o for o in build.objects if o["kind"] == "InferenceService")
    transformer = {m["name"]: m for m in isvc["spec"]["transformer"]["containers"][0]["volumeMounts"]}
    cronjob = next(o for o in build.objects if o["kind"] == "CronJob")
    ((_, containers),) = pod_specs(cronjob)
    drift = {m["name"]: m for m in containers[0]["volumeMounts"]}
    assert transformer["feedback"]["mountPath"] == drift["feedback"]["mountPath"]
    assert drift["feedback"]["readOnly"] is True and not transformer["feedback"].get("readOnly")


def test_transformer_writes_its_feedback_log_to_the_mounted_volume(kustomize_builds):
    """The transformer takes its feedback folder from the config's `serving.feedback_dir`."""
    config = pytest.importorskip("hyperrec.config")
    if "serving" not in config.HyperrecConfig.model_fields:
        pytest.skip(
            "hyperrec.config has no `serving` section yet: set serving.feedback_dir in "
            "manifests/base/config.yaml and the chart's `config` once it has (docs/DEPLOY.md)"
        )
    build = kustomize_builds["overlays/prod"]
    (config_map,) = _config_maps(build)
    tree = yaml.safe_load(config_map["data"]["config.yaml"])
    isvc = next(o for o in build.objects if o["kind"] == "InferenceService")
    mounts = {m["name"]: m["mountPath"] for m in isvc["spec"]["transformer"]["containers"][0]["volumeMounts"]}
    assert tree.get("serving", {}).get("feedback_dir") == mounts["feedback"]


def test_serving_uses_the_gpu_pool_that_training_uses(kustomize_builds):
    """The predictor's node selector and toleration are hyperrec.config's cluster.gpu defaults."""
    config = pytest.importorskip("hyperrec.config")
    gpu = config.HyperrecConfig().cluster.gpu
    isvc = next(o for o in kustomize_builds["base"].objects if o["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["nodeSelector"] == {gpu.node_selector_key: gpu.node_selector_value}
    assert [t["key"] for t in predictor["tolerations"]] == [gpu.toleration_key]
    assert gpu.accelerator_type in predictor["model"]["resources"]["limits"]


# --- image tags: pyproject's version is the one source; `make image` tags <repository>:<version>.

COMPONENTS_IMAGE = "ghcr.io/hyperrec/hyperrec"
SERVING_IMAGE = "ghcr.io/hyperrec/hyperrec-serving"


def _version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def _hyperrec_images(build: Build) -> dict[str, set[str]]:
    """Image of every hyperrec container, by "<kind>/<component>" (InferenceService components by name)."""
    found: dict[str, set[str]] = {}
    for obj in build.objects:
        if obj["kind"] == "InferenceService":
            for role in ("predictor", "transformer"):
                containers = obj["spec"][role].get("containers", [])
                found.setdefault(f"InferenceService/{role}", set()).update(c["image"] for c in containers)
        else:
            for _, containers in pod_specs(obj):
                found.setdefault(obj["kind"], set()).update(c["image"] for c in containers if "image" in c)
    return {where: images for where, images in found.items() if images}


def test_config_and_components_default_to_the_images_make_image_tags():
    config = pytest.importorskip("hyperrec.config")
    components = pytest.importorskip("hyperrec.components")
    cluster = config.HyperrecConfig().cluster
    assert cluster.image == components.DEFAULT_IMAGE == f"{COMPONENTS_IMAGE}:{_version()}"
    assert cluster.serving_image == f"{SERVING_IMAGE}:{_version()}"
    dry_run = subprocess.run(
        ["make", "-n", "image"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    tags = re.findall(r"podman build .* -t (\S+) \.$", dry_run.stdout, flags=re.MULTILINE)
    assert tags == [cluster.image, cluster.serving_image], dry_run.stdout


def test_compiled_pipelines_run_every_task_in_the_components_image(tmp_path):
    cli = pytest.importorskip("hyperrec.cli")
    assert cli.main(["pipeline", "compile", "--output-dir", str(tmp_path)]) == 0
    compiled = sorted(tmp_path.glob("*.yaml"))
    assert compiled
    for path in compiled:
        spec = next(yaml.safe_load_all(path.read_text()))
        executors = spec["deploymentSpec"]["executors"].values()
        images = {e["container"]["image"] for e in executors if "container" in e}  # importers have none
        assert images == {f"{COMPONENTS_IMAGE}:{_version()}"}, path.name


def test_chart_and_overlays_tag_both_images_with_the_package_version():
    chart = yaml.safe_load((REPO_ROOT / "helm" / "hyperrec" / "Chart.yaml").read_text())
    assert chart["appVersion"] == _version()
    values = yaml.safe_load((REPO_ROOT / "helm" / "hyperrec" / "values.yaml").read_text())
    assert (values["image"]["repository"], values["servingImage"]["repository"]) == (
        COMPONENTS_IMAGE,
        SERVING_IMAGE,
    )
    for overlay in ("local", "gpu", "prod"):
        spec = yaml.safe_load((MANIFESTS / "overlays" / overlay / "kustomization.yaml").read_text())
        assert spec["images"] == [
            {"name": COMPONENTS_IMAGE, "newTag": _version()},
            {"name": SERVING_IMAGE, "newTag": _version()},
        ], overlay


def test_transformer_runs_the_serving_image_and_the_drift_monitor_the_components_image(all_builds):
    """Kustomize builds and Helm renders alike; Triton (the predictor) is KServe's runtime, not ours."""
    for build in all_builds:
        images = _hyperrec_images(build)
        expected = {
            "InferenceService/transformer": {f"{SERVING_IMAGE}:{_version()}"},
            "CronJob": {f"{COMPONENTS_IMAGE}:{_version()}"},
            "Pod": {f"{SERVING_IMAGE}:{_version()}"},  # the chart's transformer-ready test hook
        }
        assert images, build.name
        for where, found in images.items():
            assert found == expected[where], (build.name, where, found)
