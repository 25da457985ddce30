"""`hyperrec pipeline compile` writes KFP YAML that kfp loads back, with the cluster settings in it."""

import yaml
from kfp import components

from hyperrec.cli import main
from hyperrec.config import load_config


def test_compile_writes_yaml_that_kfp_loads_back(tmp_path):
    assert main(["pipeline", "compile", "--output-dir", str(tmp_path)]) == 0
    path = tmp_path / "hyperrec-training.yaml"
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "hyperrec-training"
    assert set(loaded.component_spec.inputs) == {"config_yaml", "pipeline_run"}
    assert set(loaded.component_spec.outputs) == {
        "prepared", "models", "lm_models", "evaluation", "bundle", "registration"
    }


def test_fine_tuning_task_requests_a_gpu_node_and_every_task_the_configured_image(tmp_path):
    image = "registry.example/hyperrec:test"
    assert (
        main(["pipeline", "compile", "--output-dir", str(tmp_path), "--set", f"cluster.image={image}"]) == 0
    )
    pipeline_spec, platform_spec = yaml.safe_load_all((tmp_path / "hyperrec-training.yaml").read_text())
    executors = pipeline_spec["deploymentSpec"]["executors"]
    assert {executor["container"]["image"] for executor in executors.values()} == {image}
    tune = executors["exec-fine-tune"]["container"]
    assert tune["resources"]["accelerator"]["resourceCount"] == "1"
    assert "resources" not in executors["exec-train-baselines"]["container"]
    k8s = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-fine-tune"]
    gpu = load_config(environ={}).cluster.gpu
    assert k8s["nodeSelector"]["labels"] == {gpu.node_selector_key: gpu.node_selector_value}
    assert k8s["tolerations"][0]["key"] == gpu.toleration_key


def test_default_config_travels_as_the_pipeline_parameter_default(tmp_path):
    main(["pipeline", "compile", "--output-dir", str(tmp_path), "--set", "seed=123"])
    pipeline_spec, _ = yaml.safe_load_all((tmp_path / "hyperrec-training.yaml").read_text())
    default = pipeline_spec["root"]["inputDefinitions"]["parameters"]["config_yaml"]["defaultValue"]
    assert yaml.safe_load(default)["seed"] == 123


def test_the_deploy_step_exists_only_with_deploy_enabled_and_runs_only_when_the_gate_registered(tmp_path):
    main(["pipeline", "compile", "--output-dir", str(tmp_path / "off")])
    off, _ = yaml.safe_load_all((tmp_path / "off" / "hyperrec-training.yaml").read_text())
    assert "exec-deploy" not in off["deploymentSpec"]["executors"]

    main(["pipeline", "compile", "--output-dir", str(tmp_path / "on"), "--set", "deploy.enabled=true"])
    spec, _ = yaml.safe_load_all((tmp_path / "on" / "hyperrec-training.yaml").read_text())
    condition = spec["root"]["dag"]["tasks"]["condition-1"]
    assert condition["dependentTasks"] == ["validate-and-register"]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--validate-and-register-registered'] == true")
    inner = spec["components"]["comp-condition-1"]["dag"]["tasks"]["deploy"]
    assert inner["inputs"]["parameters"]["registration"] == {
        "componentInputParameter": "pipelinechannel--validate-and-register-registration"}
    gate_outputs = spec["components"]["comp-validate-and-register"]["outputDefinitions"]["parameters"]
    assert gate_outputs["registered"]["parameterType"] == "BOOLEAN"
