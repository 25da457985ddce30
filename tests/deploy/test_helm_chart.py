"""The Helm chart through the real Helm engine: lint, render, values.schema.json, guards and conventions."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml
from deploy_render import (
    CHART,
    CI_VALUES,
    HELM_SCENARIOS,
    REPO_ROOT,
    deep_merge,
    is_hook,
    manifests_of,
    render_chart,
    scenario_values,
)

STORAGE = {"predictor": {"storageUri": "s3://hyperrec-models/hyperrec-ranker/1/triton"}}
SEVERITY_WARNING = 2


def _render(helm, values: dict[str, Any], namespace: str = "hyperrec", release: str = "hyperrec"):
    return render_chart(helm, values, namespace, release)


def _isvc(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "InferenceService")


@pytest.mark.parametrize("scenario", list(HELM_SCENARIOS))
def test_helm_lint_strict_passes(helm, scenario: str):
    files, namespace = HELM_SCENARIOS[scenario]
    report = helm.lint(
        CHART, scenario_values(files), strict=True, namespace=namespace, kube_version="v1.29.0"
    )
    problems = [m for m in report["messages"] if m["severity"] >= SEVERITY_WARNING] + report["errors"]
    assert report["total_charts_linted"] == 1
    assert not problems, problems


def test_helm_lint_passes_with_the_chart_defaults(helm):
    report = helm.lint(CHART, None, strict=True)
    assert not report["errors"], report
    assert not [m for m in report["messages"] if m["severity"] >= SEVERITY_WARNING], report


def test_chart_defaults_satisfy_the_schema(helm):
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({})
        assert chart.schema["additionalProperties"] is False


def test_every_ci_values_file_is_rendered_by_some_scenario():
    used = {name for files, _ in HELM_SCENARIOS.values() for name in files}
    assert {p.name for p in CI_VALUES.glob("*.yaml")} == used


BAD_VALUES = [
    pytest.param(
        {"predictor": {"minReplicas": -1}}, "/predictor/minReplicas", "minimum", id="negative-replicas"
    ),
    pytest.param({"transformer": {"maxReplicas": 0}}, "/transformer/maxReplicas", "minimum", id="zero-max"),
    pytest.param(
        {"canary": {"trafficPercent": 150}}, "/canary/trafficPercent", "maximum", id="canary-over-100"
    ),
    pytest.param(
        {"predictor": {"scaleMetric": "gpu"}}, "/predictor/scaleMetric", "", id="unknown-scale-metric"
    ),
    pytest.param(
        {"predictor": {"storageUri": "hyperrec-models/ranker"}},
        "/predictor/storageUri",
        "",
        id="storage-uri-without-scheme",
    ),
    pytest.param(
        {"transformer": {"securityContext": {"runAsNonRoot": False, "allowPrivilegeEscalation": False}}},
        "/transformer/securityContext/runAsNonRoot",
        "",
        id="root-container",
    ),
    pytest.param({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "", id="bad-pull-policy"),
    pytest.param({"predictr": {"minReplicas": 1}}, "predictr", "not allowed", id="misspelt-key"),
    pytest.param({"driftMonitor": {"schedule": "hourly"}}, "/driftMonitor/schedule", "", id="bad-cron"),
]


@pytest.mark.parametrize(("values", "where", "what"), BAD_VALUES)
def test_values_schema_rejects_bad_values_with_a_clear_message(helm, values, where, what):
    with pytest.raises(helm.HelmValuesError) as caught:
        _render(helm, deep_merge(STORAGE, values))
    message = str(caught.value)
    assert "schema" in message and where in message and what in message, message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({}, "predictor.storageUri is required", id="storage-uri-required"),
        pytest.param(
            deep_merge(STORAGE, {"predictor": {"minReplicas": 5, "maxReplicas": 2}}),
            "predictor.minReplicas (5) must not exceed predictor.maxReplicas (2)",
            id="inverted-range",
        ),
        pytest.param(
            deep_merge(
                STORAGE,
                {"canary": {"enabled": True}, "inferenceService": {"deploymentMode": "RawDeployment"}},
            ),
            "canary.enabled needs inferenceService.deploymentMode=Serverless",
            id="canary-raw",
        ),
        pytest.param(
            deep_merge(STORAGE, {"serviceAccount": {"create": False}}),
            "serviceAccount.name is required",
            id="existing-sa-unnamed",
        ),
    ],
)
def test_render_guards_fail_with_a_clear_message(helm, values, message):
    with pytest.raises(helm.HelmRenderError) as caught:
        _render(helm, values)
    assert message in str(caught.value)


def test_canary_on_and_off(helm_renders):
    on = _isvc(helm_renders["prod-canary"].objects)["spec"]["predictor"]
    off = _isvc(helm_renders["prod"].objects)["spec"]["predictor"]
    assert on["canaryTrafficPercent"] == 10
    assert "canaryTrafficPercent" not in off
    assert on["model"]["storageUri"] == off["model"]["storageUri"]


def test_cpu_only_switches_triton_off_the_gpu_pool(helm_renders):
    predictor = _isvc(helm_renders["local-cpu-only"].objects)["spec"]["predictor"]
    assert "nodeSelector" not in predictor and "tolerations" not in predictor
    assert set(predictor["model"]["resources"]["limits"]) == {"cpu", "memory"}


def test_gpu_is_requested_by_default(helm_renders):
    predictor = _isvc(helm_renders["minimal"].objects)["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}


def test_optional_parts_can_be_switched_off(helm):
    values = deep_merge(
        STORAGE,
        {
            "driftMonitor": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "podDisruptionBudget": {"enabled": False},
            "serviceAccount": {"create": False, "name": "existing"},
            "feedbackLog": {"existingClaim": "shared-feedback"},
        },
    )
    objects = [o for o in manifests_of(_render(helm, values)) if not is_hook(o)]
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "InferenceService"]
    transformer = _isvc(objects)["spec"]["transformer"]
    assert transformer["serviceAccountName"] == "existing"
    assert {"name": "feedback", "persistentVolumeClaim": {"claimName": "shared-feedback"}} in transformer[
        "volumes"
    ]


def test_image_digests_pin_every_hyperrec_container(helm):
    """Each hyperrec container runs its own image (the transformer and its test pod the serving image, the
    drift monitor the components image), and each image's digest pins it."""
    components, serving = "sha256:" + "0" * 64, "sha256:" + "1" * 64
    values = deep_merge(STORAGE, {"image": {"digest": components}, "servingImage": {"digest": serving}})
    images = re.findall(r"image: (\S+)", yaml.safe_dump_all(manifests_of(_render(helm, values))))
    assert sorted(set(images)) == [
        f"ghcr.io/hyperrec/hyperrec-serving:0.1.0@{serving}",
        f"ghcr.io/hyperrec/hyperrec:0.1.0@{components}",
    ], images


@pytest.mark.parametrize("release", ["hyperrec", "r" * 53])
def test_names_fit_dns_labels(helm, release):
    """fullname is truncated to 63 characters, and so is every "<fullname>-<suffix>" name."""
    for obj in manifests_of(_render(helm, STORAGE, release=release)):
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_one_resource_per_template(helm):
    for path, text in _render(helm, STORAGE).items():
        if not path.endswith("NOTES.txt"):
            assert len([d for d in yaml.safe_load_all(text) if d]) <= 1, path


def test_every_object_carries_the_chart_labels(helm_renders):
    for obj in helm_renders["prod"].objects:
        labels = obj["metadata"]["labels"]
        assert (
            labels["app.kubernetes.io/instance"] == "hyperrec"
            and labels["app.kubernetes.io/managed-by"] == "Helm"
        )
        assert obj["metadata"]["namespace"] == "hyperrec"


def test_helm_test_pod_calls_the_transformer_readiness_endpoint(helm_renders):
    objects = helm_renders["prod"].objects
    hooks = [o for o in objects if is_hook(o)]
    pod = next(o for o in hooks if o["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    transformer = _isvc(objects)["spec"]["transformer"]["containers"][0]
    readiness = transformer["readinessProbe"]["httpGet"]["path"]
    url = pod["spec"]["containers"][0]["command"][3]
    assert url == f"http://hyperrec-transformer.hyperrec.svc.cluster.local{readiness}"
    policy = next(o for o in hooks if o["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_notes_tell_how_to_finish_the_install(helm):
    notes = _render(helm, deep_merge(STORAGE, {"canary": {"enabled": True}}))["hyperrec/templates/NOTES.txt"]
    for expected in (
        "s3://hyperrec-models/hyperrec-ranker/1/triton",
        "create secret generic hyperrec-pseudonym-key",
        "helm test hyperrec",
        "canary.trafficPercent=0",
        "cronjob/hyperrec-drift",
    ):
        assert expected in notes


def test_app_version_is_the_package_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


def _uncommented_keys(text: str) -> list[str]:
    """Mapping keys of values.yaml without a comment line directly above them (list items are exempt)."""
    missing, list_item_indent = [], None
    previous = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            previous = ""
            continue
        if list_item_indent is not None and indent < list_item_indent:
            list_item_indent = None
        if stripped.startswith("- "):
            list_item_indent = indent + 2
        elif (
            list_item_indent is None
            and not stripped.startswith("#")
            and re.match(r"[\w.\-/\"]+:", stripped)
            and not previous.lstrip().startswith("#")
        ):
            missing.append(f"line {number}: {stripped}")
        previous = line
    return missing


def test_every_values_key_has_a_comment_above_it():
    assert not _uncommented_keys((CHART / "values.yaml").read_text())


def test_the_comment_check_notices_a_missing_comment():
    assert _uncommented_keys("# a\na: 1\nb: 2\n") == ["line 3: b: 2"]


def test_feedback_path_and_drift_arguments_follow_the_values(helm):
    values = deep_merge(
        STORAGE,
        {
            "feedbackLog": {"mountPath": "/data/feedback"},
            "driftMonitor": {"extraArgs": ["--prepared", "/ref"]},
        },
    )
    objects = manifests_of(_render(helm, values))
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    assert yaml.safe_load(config_map["data"]["config.yaml"])["serving"]["feedback_dir"] == "/data/feedback"
    transformer = _isvc(objects)["spec"]["transformer"]["containers"][0]
    assert {"name": "feedback", "mountPath": "/data/feedback"} in transformer["volumeMounts"]
    command = next(o for o in objects if o["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]["template"][
        "spec"
    ]["containers"][0]["command"]
    assert command[command.index("--current") + 1] == "/data/feedback"
    assert command[-2:] == ["--prepared", "/ref"]
