"""What KFP's launcher would run for one task of the compiled training pipeline, built from the IR itself.

On a cluster the KFP driver resolves a task's inputs (pipeline parameters and constants) into an executor
input, and the launcher starts the executor's container command and args with the ``{{$}}`` placeholder
replaced by that JSON. Artifacts get ``minio://`` URIs in the pipeline root, which the executor maps to local
paths under ``/minio``. This module does the same from the pipeline spec `hyperrec pipeline compile`
writes, so a drift between the IR and what the image can run fails the image test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
#: Where KFP's launcher asks the executor to write its output metadata.
OUTPUT_FILE = "/tmp/kfp_outputs/output_metadata.json"
MINIO_MOUNT = "/minio/"


@dataclass(frozen=True)
class Launch:
    """One task as the launcher starts it: image, full argv, and where its outputs will be."""

    image: str
    argv: list[str]
    output_file: str
    artifact_uris: dict[str, str]

    @property
    def artifact_paths(self) -> dict[str, str]:
        """Local path of each output artifact (kfp.dsl.types.artifact_types maps minio://x to /minio/x)."""
        return {name: MINIO_MOUNT + uri.removeprefix("minio://") for name, uri in self.artifact_uris.items()}


def data_prep_launch(tmp_path: Path, *, data_dir: Path) -> Launch:
    """The data_prep task of the training pipeline, configured to read the tiny MovieLens copy in ``data_dir``
    (a path inside the image) and keep its key and outputs there."""
    from hyperrec.config import DataConfig, HyperrecConfig, PrivacyConfig
    from hyperrec.pipelines.runner import compile_pipelines

    cfg = HyperrecConfig(
        output_dir=data_dir / "outputs",
        data=DataConfig(dataset_dir=data_dir / "movielens_tiny", download=False),
        privacy=PrivacyConfig(pseudonym_key_file=data_dir / "pseudonym.key"),
    )
    training = next(p for p in compile_pipelines(cfg, tmp_path) if p.name == "hyperrec-training.yaml")
    spec = next(yaml.safe_load_all(training.read_text()))
    root_values = {"config_yaml": cfg.to_json(), "pipeline_run": "image-test"}
    return task_launch(spec, "data-prep", root_values, run_id="image-test-run")


def task_launch(spec: dict[str, Any], task: str, root_values: dict[str, Any], *, run_id: str) -> Launch:
    """Launch of ``task`` of the root DAG with the pipeline parameters ``root_values`` (defaults fill the
    rest)."""
    task_spec = spec["root"]["dag"]["tasks"][task]
    component = spec["components"][task_spec["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    parameters = _resolve_parameters(spec, task_spec, root_values)
    declared = component.get("inputDefinitions", {}).get("parameters", {})
    missing = [name for name, d in declared.items() if name not in parameters and not d.get("isOptional")]
    if missing:
        raise ValueError(f"task {task}: no value for required input(s) {missing}")
    uris = {
        name: f"{PIPELINE_ROOT}/{spec['pipelineInfo']['name']}/{run_id}/{task}/{name}"
        for name in component.get("outputDefinitions", {}).get("artifacts", {})
    }
    executor_input = {
        "inputs": {"parameterValues": parameters},
        "outputs": {
            "artifacts": {
                name: {"artifacts": [{
                    "name": name,
                    "type": component["outputDefinitions"]["artifacts"][name]["artifactType"],
                    "uri": uri,
                    "metadata": {},
                }]}
                for name, uri in uris.items()
            },
            "outputFile": OUTPUT_FILE,
        },
    }
    placeholder = json.dumps(executor_input)
    argv = [*executor["command"], *(arg.replace("{{$}}", placeholder) for arg in executor["args"])]
    return Launch(image=executor["image"], argv=argv, output_file=OUTPUT_FILE, artifact_uris=uris)


def _resolve_parameters(spec: dict[str, Any], task_spec: dict[str, Any], root_values: dict[str, Any]) -> dict:
    """The driver's job for parameters: pipeline inputs (given or their defaults) and constants."""
    defaults = {
        name: d["defaultValue"]
        for name, d in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
        if "defaultValue" in d
    }
    unknown = set(root_values) - set(spec["root"].get("inputDefinitions", {}).get("parameters", {}))
    if unknown:
        raise ValueError(f"the pipeline has no parameter(s) {sorted(unknown)}")
    values = {**defaults, **root_values}
    resolved = {}
    for name, source in task_spec.get("inputs", {}).get("parameters", {}).items():
        if "componentInputParameter" in source:
            resolved[name] = values[source["componentInputParameter"]]
        elif "runtimeValue" in source:
            resolved[name] = source["runtimeValue"]["constant"]
        else:
            raise ValueError(f"input {name} comes from another task ({source}); launch that task first")
    return resolved
