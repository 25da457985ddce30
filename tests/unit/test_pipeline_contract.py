"""PipelineContract reads a compiled pipeline's IR and rejects run parameters the pipeline would not
accept."""

import pytest
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input

from hyperrec.pipelines.contract import ContractError, PipelineContract


@dsl.component(base_image="python:3.11")
def consume(data: Input[Dataset], size: int, note: str):
    print(data.path, size, note)


@dsl.pipeline(name="contract-probe")
def probe(data_uri: str, size: int, note: str = "", ratio: float = 0.5, enabled: bool = False):
    imported = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=True)
    fixed = dsl.importer(artifact_uri="gs://bucket/fixed/", artifact_class=Dataset)
    consume(data=imported.output, size=size, note=note)
    consume(data=fixed.output, size=size, note=note)


@pytest.fixture(scope="module")
def contract(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "probe.yaml"
    compiler.Compiler().compile(probe, str(path))
    return PipelineContract.from_file(path)


GOOD = {"data_uri": "s3://bucket/data/", "size": 3}


def test_the_root_inputs_and_importers_are_read_from_the_ir(contract):
    assert contract.name == "contract-probe"
    assert {n: (s.type, s.required) for n, s in contract.inputs.items()} == {
        "data_uri": ("STRING", True), "size": ("NUMBER_INTEGER", True), "note": ("STRING", False),
        "ratio": ("NUMBER_DOUBLE", False), "enabled": ("BOOLEAN", False)}
    assert {(i.input_name, i.constant) for i in contract.importers} == {
        (None, "gs://bucket/fixed/"), ("data_uri", None)}


def test_a_complete_body_passes(contract):
    assert contract.violations(GOOD) == []
    assert contract.violations({**GOOD, "ratio": 1, "enabled": True, "note": "x"}) == []
    contract.check(GOOD)


def test_an_unknown_parameter_is_rejected(contract):
    (problem,) = contract.violations({**GOOD, "current_uri": "s3://b/x"})
    assert problem.startswith("unknown parameter 'current_uri'")


def test_a_missing_required_input_is_rejected(contract):
    assert contract.violations({"data_uri": "s3://bucket/data/"}) == [
        "required input 'size' (NUMBER_INTEGER) is missing"]


@pytest.mark.parametrize("name, value", [("size", "3"), ("size", True), ("ratio", "0.5"), ("enabled", "true"),
                                         ("note", 1)])
def test_a_value_of_the_wrong_type_is_rejected(contract, name, value):
    (problem,) = contract.violations({**GOOD, name: value})
    assert problem.startswith(f"input {name!r} is ")


@pytest.mark.parametrize("uri, expected", [
    ("", "gets an empty artifact_uri from parameter 'data_uri'"),
    ("/var/lib/hyperrec/feedback", "the KFP launcher downloads only gs://, s3:// or minio:// URIs"),
    ("pvc://hyperrec-feedback/", "the KFP launcher downloads only"),
])
def test_an_importer_without_a_downloadable_uri_is_rejected(contract, uri, expected):
    (problem,) = contract.violations({**GOOD, "data_uri": uri})
    assert expected in problem
    with pytest.raises(ContractError, match="does not fit pipeline 'contract-probe'"):
        contract.check({**GOOD, "data_uri": uri})


def test_a_file_that_is_not_a_compiled_pipeline_is_refused(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("kind: ConfigMap\n")
    with pytest.raises(ContractError, match="not a compiled KFP pipeline"):
        PipelineContract.from_file(path)
