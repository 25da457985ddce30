"""One source of truth: the Helm chart and the kustomize manifests render the same objects.

The two forms serve different installs (Helm for a one-command install, kustomize for GitOps with Argo CD),
so neither is generated from the other; instead, for each overlay, the chart rendered with the equivalent
values file in helm/hyperrec/ci must produce exactly the overlay's objects: same kinds and names, and the
same spec, field for field. Only what belongs to one tool is set aside before comparing: Helm's bookkeeping
labels and annotations, the helm-test hooks, the config checksum annotation (kustomize gets the same
rollout from the ConfigMap's hashed name), and that hash suffix itself.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import pytest
import yaml
from deploy_render import PARITY, Build, is_hook, object_id, parity_build_name

HELM_ONLY_ANNOTATION_PREFIXES = ("helm.sh/", "checksum/")
# configMapGenerator names of manifests/base; kustomize appends "-<content hash>" to them.
GENERATED = {"hyperrec-config"}


def _unhashed(name: str) -> str:
    stem, _, suffix = name.rpartition("-")
    return stem if stem in GENERATED and len(suffix) == 10 else name


def _strip_tool_annotations(node: Any) -> Any:
    """Drop annotations that only Helm writes (at any depth: ISVC components carry annotations too)."""
    if isinstance(node, list):
        return [_strip_tool_annotations(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "annotations" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if not k.startswith(HELM_ONLY_ANNOTATION_PREFIXES)}
            if not value:
                continue
        out[key] = _strip_tool_annotations(value)
    return out


def _normalise(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """object id -> comparable object: hash suffixes undone, top-level labels and Helm annotations removed,
    ConfigMap data parsed (comments and key order of the config YAML do not matter)."""
    renames = {
        obj["metadata"]["name"]: _unhashed(obj["metadata"]["name"])
        for obj in objects
        if obj["kind"] == "ConfigMap"
    }
    text = json.dumps(objects)
    for generated, plain in renames.items():
        if generated != plain:
            text = text.replace(f'"{generated}"', f'"{plain}"')
    normalised = {}
    for obj in json.loads(text):
        obj["metadata"].pop("labels", None)
        obj = _strip_tool_annotations(obj)
        if obj["kind"] == "ConfigMap":
            obj["data"] = {key: yaml.safe_load(value) for key, value in obj["data"].items()}
        normalised[object_id(obj)] = obj
    return normalised


def _diff(kustomize_obj: dict[str, Any], helm_obj: dict[str, Any]) -> str:
    left = yaml.safe_dump(kustomize_obj, sort_keys=True).splitlines()
    right = yaml.safe_dump(helm_obj, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(left, right, "kustomize", "helm", lineterm=""))


@pytest.mark.parametrize("scenario", list(PARITY))
def test_helm_renders_the_same_objects_as_the_overlay(
    scenario, kustomize_builds: dict[str, Build], helm_renders: dict[str, Build]
):
    kustomize = _normalise(kustomize_builds[parity_build_name(scenario)].objects)
    helm = _normalise([o for o in helm_renders[scenario].objects if not is_hook(o)])

    assert sorted(kustomize) == sorted(helm), "the two renders hold different objects"
    diffs = [
        f"{key}:\n{_diff(kustomize[key], helm[key])}" for key in kustomize if kustomize[key] != helm[key]
    ]
    assert not diffs, (
        "Helm and kustomize disagree (values in helm/hyperrec/ci vs the overlay):\n" + "\n".join(diffs)
    )


@pytest.mark.parametrize("scenario", list(PARITY))
def test_kustomize_labels_are_a_subset_of_the_chart_labels(scenario, kustomize_builds, helm_renders):
    helm_labels = {object_id(o): o["metadata"]["labels"] for o in helm_renders[scenario].objects}
    for obj in kustomize_builds[parity_build_name(scenario)].objects:
        meta = obj["metadata"]
        key = f"{obj['kind']}/{meta['namespace']}/{_unhashed(meta['name'])}"
        assert meta.get("labels", {}).items() <= helm_labels[key].items(), key


def test_the_comparison_notices_a_divergence(kustomize_builds, helm_renders):
    """Guard against a normaliser that hides differences: change one replica count and it must show."""
    helm = [json.loads(json.dumps(o)) for o in helm_renders["prod"].objects if not is_hook(o)]
    next(o for o in helm if o["kind"] == "InferenceService")["spec"]["predictor"]["maxReplicas"] += 1
    assert _normalise(helm) != _normalise(kustomize_builds["overlays/prod"].objects)
