"""manifests/components/monitoring/kfp-recurring-run.yaml is a valid KFP v2 RecurringRun API body.

The field names and enums are checked against kfp-server-api's generated V2beta1 models (the client of
the KFP version the project pins), after substituting the three server-assigned IDs and the deployment's two
object-store URIs as the apply step in docs/DEPLOY.md does. Its parameters are checked against the compiled
pipeline in tests/unit/monitoring/test_schedule_contract.py.
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

import pytest
import yaml
from deploy_render import MANIFESTS, REPO_ROOT

BODY = MANIFESTS / "components" / "monitoring" / "kfp-recurring-run.yaml"
SERVER_ASSIGNED = {"PIPELINE_ID", "PIPELINE_VERSION_ID", "EXPERIMENT_ID"}
DEPLOYMENT_URIS = {"REFERENCE_URI", "CURRENT_URI"}
# Nested messages of the body and their generated model classes.
MODELS = {
    (): "V2beta1RecurringRun",
    ("trigger",): "V2beta1Trigger",
    ("trigger", "cron_schedule"): "V2beta1CronSchedule",
    ("pipeline_version_reference",): "V2beta1PipelineVersionReference",
    ("runtime_config",): "V2beta1RuntimeConfig",
}
# robfig/cron with seconds, as KFP parses it: six fields.
CRON_FIELD = re.compile(r"^(\*|\?|[0-9A-Za-z,\-*/]+)$")


@pytest.fixture(scope="module")
def kfp_server_api():
    return pytest.importorskip(
        "kfp_server_api", reason="kfp-server-api (a dependency of kfp) is not installed"
    )


def _body() -> dict[str, Any]:
    substitutes = {key: f"test-{key.lower()}" for key in SERVER_ASSIGNED}
    substitutes.update({key: f"s3://test-bucket/{key.lower()}/" for key in DEPLOYMENT_URIS})
    text = Template(BODY.read_text()).substitute(substitutes)
    return yaml.safe_load(text)


def test_only_the_server_assigned_ids_and_the_deployment_uris_are_left_to_substitute():
    found = {m.group(1) for m in re.finditer(r"\$\{(\w+)\}", BODY.read_text())}
    assert found == SERVER_ASSIGNED | DEPLOYMENT_URIS


@pytest.mark.parametrize("path", list(MODELS), ids=lambda p: ".".join(p) or "RecurringRun")
def test_field_names_are_those_of_the_v2beta1_api(kfp_server_api, path):
    node = _body()
    for key in path:
        node = node[key]
    model = getattr(kfp_server_api, MODELS[path])
    unknown = set(node) - set(model.attribute_map)
    assert not unknown, f"{MODELS[path]} has no fields {sorted(unknown)}"


def test_body_builds_the_api_model(kfp_server_api):
    body = _body()
    run = kfp_server_api.V2beta1RecurringRun(
        display_name=body["display_name"],
        description=body["description"],
        pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
            **body["pipeline_version_reference"]
        ),
        experiment_id=body["experiment_id"],
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(**body["runtime_config"]),
        service_account=body["service_account"],
        trigger=kfp_server_api.V2beta1Trigger(
            cron_schedule=kfp_server_api.V2beta1CronSchedule(**body["trigger"]["cron_schedule"])
        ),
        max_concurrency=body["max_concurrency"],
        no_catchup=body["no_catchup"],
        mode=body["mode"],
    )
    assert run.to_dict()["pipeline_version_reference"]["pipeline_version_id"] == "test-pipeline_version_id"
    assert body["mode"] in kfp_server_api.RecurringRunMode.allowable_values


def test_schedule_runs_one_at_a_time_without_catch_up():
    body = _body()
    assert body["max_concurrency"] == "1"  # int64 travels as a string in the API's JSON
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    fields = body["trigger"]["cron_schedule"]["cron"].split()
    assert len(fields) == 6 and all(CRON_FIELD.match(f) for f in fields), fields


def test_deploy_doc_applies_this_body():
    doc = (REPO_ROOT / "docs" / "DEPLOY.md").read_text()
    assert "manifests/components/monitoring/kfp-recurring-run.yaml" in doc
    assert "/apis/v2beta1/recurringruns" in doc
    assert all(f"export {name}=" in doc or f" {name}=" in doc for name in SERVER_ASSIGNED | DEPLOYMENT_URIS)
