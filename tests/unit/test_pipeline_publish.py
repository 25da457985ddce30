"""`hyperrec pipeline publish`: a new pipeline version per commit and a run of it, as CI does on main.

No KFP API server runs here, so FakeKfpClient (tests/fake_kfp.py) stands in for kfp.Client: kfp's own client
code builds each body, and the fake keeps the server's state and rejects what the server rejects (a package
that is not a compiled pipeline, a version of an unknown pipeline, a run whose parameters do not fit the
uploaded IR).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_kfp import FakeKfpClient
from kfp_server_api.exceptions import ApiException

from hyperrec.cli import main
from hyperrec.config import HyperrecConfig
from hyperrec.errors import ConfigError
from hyperrec.pipelines.publish import publish, read_contract
from hyperrec.pipelines.runner import compile_pipelines


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    paths = compile_pipelines(HyperrecConfig(), tmp_path_factory.mktemp("pipelines"))
    return {path.stem: path for path in paths}


def test_each_commit_becomes_a_version_and_a_run_of_it(packages):
    client = FakeKfpClient()
    package = packages["hyperrec-training"]
    first = publish(client, package, version="abc123", experiment="hyperrec-ci", run_name="ci-abc123",
                    params={"pipeline_run": "ci-abc123"})
    second = publish(client, package, version="def456", experiment="hyperrec-ci", run_name="ci-def456")
    assert first.pipeline_id == second.pipeline_id == client.pipelines["hyperrec-training"]
    assert first.version_id != second.version_id
    assert [run["version_id"] for run in client.runs] == [first.version_id, second.version_id]
    assert client.runs[0]["params"] == {"pipeline_run": "ci-abc123"}
    assert len(client.experiments) == 1


def test_a_parameter_the_pipeline_does_not_declare_is_refused_before_any_call(packages):
    client = FakeKfpClient()
    with pytest.raises(ConfigError, match=r"unknown parameter 'current_url'"):
        publish(client, packages["hyperrec-retraining"], version="v", experiment="e", run_name="r",
                params={"current_url": "s3://bucket/window/"})
    assert not client.pipelines and not client.runs


def test_a_retraining_run_without_downloadable_inputs_is_refused_before_any_call(packages):
    client = FakeKfpClient()
    with pytest.raises(ConfigError, match=r"importer .* gets an empty artifact_uri"):
        publish(client, packages["hyperrec-retraining"], version="v", experiment="e", run_name="r")
    assert not client.pipelines


def test_cli_params_are_typed_as_the_pipeline_declares_them(packages, monkeypatch, capsys):
    client = FakeKfpClient()
    monkeypatch.setattr("kfp.Client", lambda host, namespace=None, existing_token=None: client)
    argv = [
        "pipeline",
        "publish",
        str(packages["hyperrec-retraining"]),
        "--version",
        "v1",
        "--experiment",
        "e",
        "--host",
        "http://kfp.example",
        "--param",
        "force_retrain=true",
        "--param",
        "pipeline_run=42",
        "--param",
        "reference_uri=s3://data/reference/",
        "--param",
        "current_uri=s3://data/current/",
    ]
    assert main(argv) == 0
    (run,) = client.runs
    assert run["params"]["force_retrain"] is True and run["params"]["pipeline_run"] == "42"
    assert f"run {run['run_id']}" in capsys.readouterr().out


def test_the_fake_rejects_what_the_api_server_rejects(packages, tmp_path):
    client = FakeKfpClient()
    experiment = client.create_experiment("e").experiment_id
    pipeline = client.upload_pipeline(str(packages["hyperrec-training"]), "hyperrec-training").pipeline_id
    (version,) = client.versions
    with pytest.raises(ApiException, match="unknown parameter 'current_uri'"):
        client.run_pipeline(experiment, "r", params={"current_uri": "s3://x/"}, pipeline_id=pipeline,
                            version_id=version)
    with pytest.raises(ApiException, match="already exists"):
        client.upload_pipeline(str(packages["hyperrec-training"]), "hyperrec-training")
    with pytest.raises(ApiException, match="Not Found: pipeline"):
        client.upload_pipeline_version(str(packages["hyperrec-training"]), "v2", pipeline_id="p-404")
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text("kind: Deployment\n")
    with pytest.raises(ApiException, match="not a compiled pipeline"):
        client.upload_pipeline_version(str(manifest), "v3", pipeline_id=pipeline)
    with pytest.raises(ApiException, match="Not Found: experiment"):
        client.run_pipeline("experiment-404", "r", pipeline_id=pipeline, version_id=version)
    with pytest.raises(TypeError):  # kfp.Client.run_pipeline takes no namespace
        client.run_pipeline(experiment, "r", pipeline_id=pipeline, version_id=version, namespace="team")
    with pytest.raises(ValueError, match="version_id"):  # kfp's own client-side check
        client.run_pipeline(experiment, "r", pipeline_id=pipeline)


def test_a_file_that_is_not_a_compiled_pipeline_is_a_clear_error(tmp_path):
    path = tmp_path / "not-a-pipeline.yaml"
    path.write_text("kind: Deployment\n")
    with pytest.raises(ConfigError, match="not a compiled KFP pipeline"):
        read_contract(path)
