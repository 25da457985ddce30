"""The parameter contract of a compiled pipeline, read from its KFP IR YAML as plain data.

Whoever starts a run (the drift trigger, the weekly recurring run, a CI job) sends
``runtime_config.parameters``; the compiled pipeline on the other side decides what it accepts.
``PipelineContract`` reads that side from the IR (root ``inputDefinitions`` and the importer tasks) and lists
what a run body gets wrong:

- a parameter the pipeline does not have (the KFP API rejects it);
- a required input (no default, not optional) that is missing;
- a value of the wrong type for the input's ``parameterType``;
- an importer whose ``artifact_uri`` (the value sent, else the compiled default) is empty or not a URI the
  KFP launcher can download: ``gs://``, ``s3://`` or ``minio://``
  (``hyperrec.monitoring.settings.is_kfp_importable``).

No KFP import: the IR is a YAML document, so the checker serves tests and tools alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hyperrec.errors import HyperrecError
from hyperrec.monitoring.settings import is_kfp_importable

# parameterType -> Python types a JSON run body may carry for it (bool is not a number here).
_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "BOOLEAN": (bool,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "LIST": (list,),
    "STRUCT": (dict,),
}


class ContractError(HyperrecError):
    """A run body that the compiled pipeline would not accept or could not run."""


@dataclass(frozen=True)
class InputSpec:
    """One root input of the pipeline."""

    name: str
    type: str
    default: Any = None
    has_default: bool = False
    optional: bool = False

    @property
    def required(self) -> bool:
        return not (self.has_default or self.optional)


@dataclass(frozen=True)
class ImporterSpec:
    """One importer task: its artifact_uri is either a root input or a compiled constant."""

    task: str
    input_name: str | None = None
    constant: str | None = None


def _importer(task_name: str, task: Mapping[str, Any], spec: Mapping[str, Any]) -> ImporterSpec | None:
    component = spec["components"].get(task.get("componentRef", {}).get("name", ""), {})
    executor = spec.get("deploymentSpec", {}).get("executors", {}).get(component.get("executorLabel", ""), {})
    if "importer" not in executor:
        return None
    uri = executor["importer"].get("artifactUri", {})
    if "constant" in uri:
        return ImporterSpec(task_name, constant=str(uri["constant"]))
    source = task.get("inputs", {}).get("parameters", {}).get(uri.get("runtimeParameter", ""), {})
    if "componentInputParameter" in source:
        return ImporterSpec(task_name, input_name=source["componentInputParameter"])
    return ImporterSpec(task_name, constant=str(source.get("runtimeValue", {}).get("constant", "")))


@dataclass(frozen=True)
class PipelineContract:
    """Root inputs and importers of one compiled pipeline."""

    name: str
    inputs: dict[str, InputSpec]
    importers: tuple[ImporterSpec, ...]

    @classmethod
    def from_ir(cls, spec: Mapping[str, Any]) -> PipelineContract:
        """From the first YAML document of a compiled pipeline (the PipelineSpec).

        Args:
            spec: the PipelineSpec document.

        Returns:
            The pipeline's name, its input parameters and its importers.
        """
        root = spec["root"]
        inputs = {
            name: InputSpec(name, d["parameterType"], d.get("defaultValue"), "defaultValue" in d,
                            bool(d.get("isOptional")))
            for name, d in root.get("inputDefinitions", {}).get("parameters", {}).items()
        }
        importers = tuple(
            found for task_name, task in sorted(root.get("dag", {}).get("tasks", {}).items())
            if (found := _importer(task_name, task, spec)) is not None
        )
        return cls(spec["pipelineInfo"]["name"], inputs, importers)

    @classmethod
    def from_file(cls, path: str | Path) -> PipelineContract:
        """From a compiled pipeline YAML (``hyperrec pipeline compile``)."""
        documents = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d]
        if not documents or "root" not in documents[0]:
            raise ContractError(f"{path}: not a compiled KFP pipeline (no root in its first document)")
        return cls.from_ir(documents[0])

    def violations(self, parameters: Mapping[str, Any]) -> list[str]:
        """Everything wrong with a run's parameters, one message each; empty when the run is acceptable.

        Args:
            parameters: the run's parameters, name -> value.

        Returns:
            The problems: unknown or missing parameters, wrong types, importers without a usable URI.
        """
        problems = [f"unknown parameter {name!r} (the pipeline's inputs: {sorted(self.inputs)})"
                    for name in sorted(set(parameters) - set(self.inputs))]
        for spec in self.inputs.values():
            if spec.name not in parameters:
                if spec.required:
                    problems.append(f"required input {spec.name!r} ({spec.type}) is missing")
                continue
            value, allowed = parameters[spec.name], _TYPES.get(spec.type, (object,))
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                problems.append(f"input {spec.name!r} is {spec.type}, got {type(value).__name__} {value!r}")
        for importer in self.importers:
            problems.extend(self._importer_problems(importer, parameters))
        return problems

    def _importer_problems(self, importer: ImporterSpec, parameters: Mapping[str, Any]) -> list[str]:
        if importer.input_name is None:
            uri, source = importer.constant or "", "its compiled constant"
        elif importer.input_name in parameters:
            value = parameters[importer.input_name]
            uri, source = ("" if value is None else str(value)), f"parameter {importer.input_name!r}"
        else:
            spec = self.inputs.get(importer.input_name)
            uri = str(spec.default or "") if spec else ""
            source = f"the compiled default of {importer.input_name!r}"
        if not uri:
            return [f"importer {importer.task!r} gets an empty artifact_uri from {source}"]
        if not is_kfp_importable(uri):
            return [f"importer {importer.task!r} gets {uri!r} from {source}: the KFP launcher downloads only "
                    "gs://, s3:// or minio:// URIs"]
        return []

    def check(self, parameters: Mapping[str, Any], *, what: str = "run") -> None:
        """Raise ``ContractError`` naming every violation of ``parameters``."""
        problems = self.violations(parameters)
        if problems:
            raise ContractError(f"{what} does not fit pipeline {self.name!r}: " + "; ".join(problems))
