"""FakeKfpClient: the ``kfp.Client`` calls hyperrec makes, answered as the KFP API server answers them,
because no KFP API server can run on these machines. One fake for every test that talks to KFP
(``hyperrec pipeline publish``, the drift trigger, the schedules).

The client half is kfp's own: each call's arguments are bound to the real ``kfp.Client`` method's signature
(an argument it does not take raises the TypeError the real call raises), and ``run_pipeline`` builds its body
with kfp's ``Client._create_job_config`` (the real ValueError unless exactly a package path or both
pipeline_id and version_id are given; it reads and parses the package). The server half keeps the server's
state (pipelines, versions, experiments, runs) and answers as it does, with kfp_server_api's ``ApiException``:

- upload of a file that is not a compiled pipeline → 400; a pipeline name that exists → 409;
- a version of an unknown pipeline → 404; a version name the pipeline already has → 409;
- a run in an unknown experiment, of an unknown version, or of a version of another pipeline → 404 / 400;
- a run whose parameters do not fit the compiled pipeline IR it would run (``PipelineContract``: unknown
  parameters, missing required inputs, wrong types, importers with empty or non-downloadable URIs) → 400;
- ``get_run`` of a run it never created → 404.

Failure injection: ``fail_runs`` / ``fail_gets`` are how many of the next ``run_pipeline`` / ``get_run`` calls
raise a ConnectionError (an unreachable API server). ``states``: run id -> state (new runs: RUNNING).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml
from kfp.client import Client
from kfp_server_api import V2beta1Experiment, V2beta1Pipeline, V2beta1PipelineVersion, V2beta1Run
from kfp_server_api.exceptions import ApiException

from hyperrec.pipelines.contract import ContractError, PipelineContract

_JOB_CONFIG_ARGS = (
    "params",
    "pipeline_package_path",
    "pipeline_id",
    "version_id",
    "enable_caching",
    "cache_key",
    "pipeline_root",
)


def _bind(method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The call's arguments by name, as the real ``kfp.Client`` method would take them (TypeError
    otherwise)."""
    bound = inspect.signature(getattr(Client, method)).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return {name: value for name, value in bound.arguments.items() if name != "self"}


def _read_pipeline(path: str) -> dict[str, Any]:
    """The pipeline spec the server would store for an uploaded file; 400 when it is not a compiled
    pipeline."""
    try:
        spec = next(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, StopIteration) as exc:
        raise ApiException(status=400, reason=f"Bad Request: cannot read pipeline {path}: {exc}") from None
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise ApiException(status=400, reason=f"Bad Request: {path} is not a compiled pipeline")
    return spec


class FakeKfpClient:
    """The parts of ``kfp.Client`` hyperrec uses, with the API server's checks (see the module docstring)."""

    def __init__(self, fail_runs: int = 0, fail_gets: int = 0) -> None:
        self.fail_runs, self.fail_gets = fail_runs, fail_gets
        self.pipelines: dict[str, str] = {}  # name -> pipeline id
        self.versions: dict[
            str, tuple[str, str, PipelineContract]
        ] = {}  # version id -> (pipeline id, name, IR)
        self.experiments: dict[str, str] = {}  # name -> experiment id
        self.states: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []
        self.get_calls = 0

    def add_uploaded(self, package: Path, pipeline_id: str, version_id: str) -> None:
        """Server state of a pipeline uploaded earlier, with the ids the server assigned it."""
        spec = _read_pipeline(str(package))
        self.pipelines[spec["pipelineInfo"]["name"]] = pipeline_id
        self.versions[version_id] = (pipeline_id, version_id, PipelineContract.from_ir(spec))

    def get_pipeline_id(self, *args: Any, **kwargs: Any) -> str | None:
        return self.pipelines.get(_bind("get_pipeline_id", *args, **kwargs)["name"])

    def upload_pipeline(self, *args: Any, **kwargs: Any) -> V2beta1Pipeline:
        call = _bind("upload_pipeline", *args, **kwargs)
        spec = _read_pipeline(call["pipeline_package_path"])
        name = call["pipeline_name"] or spec["pipelineInfo"]["name"]
        if name in self.pipelines:
            raise ApiException(status=409, reason=f"Conflict: pipeline {name!r} already exists")
        self.pipelines[name] = f"pipeline-{len(self.pipelines) + 1}"
        self._add_version(spec, self.pipelines[name], name)
        return V2beta1Pipeline(pipeline_id=self.pipelines[name], display_name=name)

    def upload_pipeline_version(self, *args: Any, **kwargs: Any) -> V2beta1PipelineVersion:
        call = _bind("upload_pipeline_version", *args, **kwargs)
        pipeline_id = call["pipeline_id"] or self.pipelines.get(call["pipeline_name"] or "")
        if pipeline_id not in self.pipelines.values():
            raise ApiException(
                status=404, reason=f"Not Found: pipeline {pipeline_id or call['pipeline_name']!r}"
            )
        spec = _read_pipeline(call["pipeline_package_path"])
        version_id = self._add_version(spec, pipeline_id, call["pipeline_version_name"])
        return V2beta1PipelineVersion(pipeline_id=pipeline_id, pipeline_version_id=version_id,
                                      display_name=call["pipeline_version_name"])

    def create_experiment(self, *args: Any, **kwargs: Any) -> V2beta1Experiment:
        """Like kfp.Client: the existing experiment of that name, else a new one."""
        call = _bind("create_experiment", *args, **kwargs)
        experiment_id = self.experiments.setdefault(call["name"], f"experiment-{len(self.experiments) + 1}")
        return V2beta1Experiment(experiment_id=experiment_id, display_name=call["name"])

    def run_pipeline(self, *args: Any, **kwargs: Any) -> V2beta1Run:
        call = _bind("run_pipeline", *args, **kwargs)
        if self.fail_runs > 0:
            self.fail_runs -= 1
            raise ConnectionError("KFP API server unreachable")
        config = Client._create_job_config(None, **{k: call[k] for k in _JOB_CONFIG_ARGS})
        if call["experiment_id"] not in self.experiments.values():
            raise ApiException(status=404, reason=f"Not Found: experiment {call['experiment_id']!r}")
        contract = self._contract(config)
        params = dict(config.runtime_config.parameters or {})
        problems = contract.violations(params)
        if problems:
            raise ApiException(status=400, reason="Bad Request: " + "; ".join(problems))
        run_id = f"run-{len(self.runs) + 1}"
        self.runs.append({**call, "run_id": run_id, "params": params, "pipeline": contract.name})
        self.states[run_id] = "RUNNING"
        return V2beta1Run(run_id=run_id, display_name=call["job_name"], state="PENDING")

    def get_run(self, *args: Any, **kwargs: Any) -> V2beta1Run:
        run_id = _bind("get_run", *args, **kwargs)["run_id"]
        self.get_calls += 1
        if self.fail_gets > 0:
            self.fail_gets -= 1
            raise ConnectionError("KFP API server unreachable")
        if run_id not in self.states:
            raise ApiException(status=404, reason=f"Not Found: run {run_id!r}")
        return V2beta1Run(run_id=run_id, state=self.states[run_id])

    def _add_version(self, spec: dict[str, Any], pipeline_id: str, name: str) -> str:
        if any(owner == pipeline_id and known == name for owner, known, _ in self.versions.values()):
            raise ApiException(
                status=409, reason=f"Conflict: pipeline {pipeline_id} already has version {name!r}"
            )
        try:
            contract = PipelineContract.from_ir(spec)
        except (KeyError, TypeError, ContractError) as exc:
            raise ApiException(status=400, reason=f"Bad Request: invalid pipeline spec: {exc}") from None
        version_id = f"version-{len(self.versions) + 1}"
        self.versions[version_id] = (pipeline_id, name, contract)
        return version_id

    def _contract(self, config: Any) -> PipelineContract:
        if config.pipeline_spec is not None:  # the package, wrapped with its platform spec when it has one
            return PipelineContract.from_ir(config.pipeline_spec.get("pipeline_spec", config.pipeline_spec))
        reference = config.pipeline_version_reference
        if reference.pipeline_version_id not in self.versions:
            raise ApiException(
                status=404, reason=f"Not Found: pipeline version {reference.pipeline_version_id!r}"
            )
        owner, _, contract = self.versions[reference.pipeline_version_id]
        if owner != reference.pipeline_id:
            raise ApiException(
                status=400,
                reason=f"Bad Request: version {reference.pipeline_version_id!r} is "
                f"not a version of pipeline {reference.pipeline_id!r}",
            )
        return contract
