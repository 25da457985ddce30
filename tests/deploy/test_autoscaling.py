"""Autoscaling reaches the InferenceService in the form KServe reads for its deployment mode.

- Serverless: KServe writes minReplicas, maxReplicas, scaleMetric and scaleTarget into the Knative revision's
  ``autoscaling.knative.dev/min-scale``, ``max-scale``, ``metric`` and ``target`` (the fields win over
  annotations of those names, so none may be set as annotations here), defaults the class to KPA, and copies
  the component's annotations to the revision: the other KPA settings live there.
- RawDeployment: ``serving.kserve.io/autoscalerClass: hpa`` makes KServe create an HPA that scales on the
  resource named by scaleMetric (cpu or memory) at scaleTarget percent; Knative annotations mean nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from deploy_render import Build, deep_merge, manifests_of, render_chart, scenario_values

KNATIVE = "autoscaling.knative.dev/"
KPA_CLASS = "kpa.autoscaling.knative.dev"
#: Knative annotations KServe derives from its own fields; setting them as annotations would be overwritten.
FIELD_OWNED = {f"{KNATIVE}{key}" for key in ("min-scale", "max-scale", "metric", "target")}
COMPONENTS = ("predictor", "transformer")


def _isvc(build: Build) -> dict[str, Any]:
    (isvc,) = [o for o in build.objects if o["kind"] == "InferenceService"]
    return isvc


def _knative_annotations(component: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in component.get("annotations", {}).items() if k.startswith(KNATIVE)}


def test_serverless_renders_set_the_kpa_on_each_component(all_builds):
    checked = 0
    for build in all_builds:
        isvc = _isvc(build)
        if isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] != "Serverless":
            continue
        assert "serving.kserve.io/autoscalerClass" not in isvc["metadata"]["annotations"], build.name
        for name in COMPONENTS:
            component = isvc["spec"][name]
            knative = _knative_annotations(component)
            assert knative.get(f"{KNATIVE}class") == KPA_CLASS, f"{build.name}: {name}"
            assert not FIELD_OWNED & knative.keys(), f"{build.name}: {name} sets what KServe's fields own"
            assert component["scaleMetric"] in {"concurrency", "rps"}, f"{build.name}: {name}"
            assert 1 <= int(knative[f"{KNATIVE}target-utilization-percentage"]) <= 100
            assert component["minReplicas"] <= component["maxReplicas"]
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("source", ["kustomize", "helm"])
def test_raw_deployment_hands_scaling_to_kserves_hpa(source, kustomize_builds, helm_renders):
    build = (
        kustomize_builds["overlays/prod+components/raw-deployment"]
        if source == "kustomize"
        else helm_renders["prod-raw-deployment"]
    )
    isvc = _isvc(build)
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"
    for name in COMPONENTS:
        component = isvc["spec"][name]
        assert component["scaleMetric"] == "cpu" and 1 <= component["scaleTarget"] <= 100, name
        assert not _knative_annotations(component), f"{name}: Knative annotations in RawDeployment mode"
        assert component["minReplicas"] >= 1, f"{name}: an HPA does not scale to zero"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"inferenceService": {"deploymentMode": "RawDeployment"}},
         'predictor.scaleMetric "concurrency" does not work in RawDeployment mode: use one of cpu, memory'),
        ({"transformer": {"scaleMetric": "cpu"}},
         'transformer.scaleMetric "cpu" does not work in Serverless mode: use one of concurrency, rps'),
    ],
)
def test_the_chart_refuses_a_scale_metric_the_mode_cannot_use(helm, override, message):
    values = deep_merge(scenario_values(("minimal-values.yaml",)), override)
    with pytest.raises(Exception, match=message):
        manifests_of(render_chart(helm, values, "hyperrec"))


def test_kpa_settings_in_values_reach_the_revision_annotations(helm):
    values = deep_merge(
        scenario_values(("minimal-values.yaml",)),
        {"predictor": {"kpa": {"targetUtilizationPercentage": 55, "window": "90s", "scaleDownDelay": "10m"}}},
    )
    predictor = _isvc(Build("x", manifests_of(render_chart(helm, values, "hyperrec")), "helm"))["spec"][
        "predictor"
    ]
    assert _knative_annotations(predictor) == {
        f"{KNATIVE}class": KPA_CLASS,
        f"{KNATIVE}target-utilization-percentage": "55",
        f"{KNATIVE}window": "90s",
        f"{KNATIVE}scale-down-delay": "10m",
    }
