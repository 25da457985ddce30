"""`hyperrec pipeline publish`: a new pipeline version per commit and a run of it, as CI does on main.

No KFP API server runs here, so FakeKfpClient stands in for kfp.Client. It keeps the real server's state
(pipelines, versions, experiments) and rejects what the server rejects: a package that is not a compiled
pipeline, a version of an unknown pipeline, a run of an unknown version, and run parameters the compiled IR
does not declare or a required one left out (the pipeline spec the run would use is the uploaded IR).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from hyperrec.config import HyperrecConfig
from hyperrec.errors import ConfigError
from hyperrec.pipelines.publish import publish, read_ir
from hyperrec.pipelines.runner import compile_pipelines


class FakeKfpClient:
    """The parts of kfp.Client that publish uses, with the API server's checks."""

    def __init__(self) -> None:
        self.pipelines: dict[str, str] = {}  # name -> id
        self.versions: dict[str, tuple[str, dict]] = {}  # version id -> (pipeline id, IR)
        self.experiments: dict[str, str] = {}
        self.runs: list[dict] = []

    def get_pipeline_id(self, name: str) -> str | None:
        return self.pipelines.get(name)

    def upload_pipeline(self, path: str, pipeline_name: str, namespace: str | None = None):
        if pipeline_name in self.pipelines:
            raise ValueError(f"pipeline {pipeline_name} already exists")
        self.pipelines[pipeline_name] = f"p-{len(self.pipelines) + 1}"
        self._add_version(path, self.pipelines[pipeline_name])
        return SimpleNamespace(pipeline_id=self.pipelines[pipeline_name])

    def upload_pipeline_version(self, path: str, version_name: str, pipeline_id: str):
        if pipeline_id not in self.pipelines.values():
            raise ValueError(f"no pipeline {pipeline_id}")
        return SimpleNamespace(pipeline_version_id=self._add_version(path, pipeline_id))

    def create_experiment(self, name: str, namespace: str | None = None):
        return SimpleNamespace(experiment_id=self.experiments.setdefault(name, f"e-{len(self.experiments) + 1}"))

    def run_pipeline(self, experiment_id, job_name, params, pipeline_id, version_id):
        if experiment_id not in self.experiments.values():
            raise ValueError(f"no experiment {experiment_id}")
        owner, ir = self.versions[version_id]
        if owner != pipeline_id:
            raise ValueError(f"version {version_id} is not a version of {pipeline_id}")
        declared = ir["root"]["inputDefinitions"]["parameters"]
        if set(params) - set(declared):
            raise ValueError(f"unknown parameters {set(params) - set(declared)}")
        required = {n for n, d in declared.items() if not d.get("isOptional") and "defaultValue" not in d}
        if required - set(params):
            raise ValueError(f"missing parameters {required - set(params)}")
        self.runs.append({"name": job_name, "version_id": version_id, "params": params})
        return SimpleNamespace(run_id=f"r-{len(self.runs)}")

    def _add_version(self, path: str, pipeline_id: str) -> str:
        ir = next(yaml.safe_load_all(Path(path).read_text()))
        if "pipelineInfo" not in ir or "root" not in ir:
            raise ValueError("not a compiled pipeline")
        version_id = f"v-{len(self.versions) + 1}"
        self.versions[version_id] = (pipeline_id, ir)
        return version_id


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
    with pytest.raises(ConfigError, match=r"has no parameter \['current_url'\]"):
        publish(client, packages["hyperrec-retraining"], version="v", experiment="e", run_name="r",
                params={"current_url": "s3://bucket/window/"})
    assert not client.pipelines and not client.runs


def test_the_fake_rejects_what_the_api_server_rejects(packages, tmp_path):
    client = FakeKfpClient()
    experiment = client.create_experiment("e").experiment_id
    pipeline = client.upload_pipeline(str(packages["hyperrec-training"]), "hyperrec-training").pipeline_id
    (version,) = client.versions
    with pytest.raises(ValueError, match="unknown parameters"):
        client.run_pipeline(experiment, "r", {"current_uri": "s3://x/"}, pipeline, version)
    with pytest.raises(ValueError, match="no pipeline"):
        client.upload_pipeline_version(str(packages["hyperrec-training"]), "v2", "p-404")
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text("kind: Deployment\n")
    with pytest.raises(ValueError, match="not a compiled pipeline"):
        client.upload_pipeline_version(str(manifest), "v3", pipeline)


def test_a_file_that_is_not_a_compiled_pipeline_is_a_clear_error(tmp_path):
    path = tmp_path / "not-a-pipeline.yaml"
    path.write_text("kind: Deployment\n")
    with pytest.raises(ConfigError, match="not a compiled KFP pipeline"):
        read_ir(path)
