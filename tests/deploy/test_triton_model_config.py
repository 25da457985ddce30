"""Model config vs node pool: the Triton config the predictor is told to load exists in a real bundle and
matches where the predictor runs.

Every serving bundle holds ``triton/<model>/config.pbtxt`` (KIND_GPU) and ``triton/<model>/configs/cpu.pbtxt``
(KIND_CPU). KServe runs ``tritonserver --model-store=/mnt/models ...`` (the kserve-tritonserver runtime) with
the predictor's ``args`` appended, and /mnt/models is the download of ``storageUri`` = ``<bundle>/triton``.
Triton loads ``<model>/configs/<name>.pbtxt`` for ``--model-config-name=<name>`` and silently falls back to
``config.pbtxt`` when that file is missing, so a wrong name would put GPU instances on a CPU node: the
tests below resolve the name against a bundle that ``build_demo_bundle`` really wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deploy_render import Build, object_id

GPU_RESOURCE = "nvidia.com/gpu"
FLAG = "--model-config-name"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from hyperrec.export.tiny import build_demo_bundle

    out = tmp_path_factory.mktemp("bundle") / "ranker"
    build_demo_bundle(out, n_items=30, max_history=6, dynamo=False, with_embeddings=False)
    return out


def _config_name(args: list[str]) -> str | None:
    """The value of --model-config-name in Triton's argument list (``--flag=value`` or ``--flag value``)."""
    for index, arg in enumerate(args):
        if arg.startswith(f"{FLAG}="):
            return arg.split("=", 1)[1]
        if arg == FLAG:
            return args[index + 1]
    return None


def _triton_config_path(model_dir: Path, name: str | None) -> Path:
    """The file Triton reads for one model: configs/<name>.pbtxt when named and present, else config.pbtxt."""
    if name is not None and (model_dir / "configs" / f"{name}.pbtxt").is_file():
        return model_dir / "configs" / f"{name}.pbtxt"
    return model_dir / "config.pbtxt"


def _instance_kinds(path: Path) -> set[str]:
    from hyperrec.export.triton_config import model_config_pb2, parse_triton_config

    kinds = model_config_pb2().ModelInstanceGroup.Kind
    return {kinds.Name(group.kind) for group in parse_triton_config(path).instance_group}


def _predictors(build: Build) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{build.name}: {object_id(o)}", o["spec"]["predictor"])
        for o in build.objects
        if o["kind"] == "InferenceService"
    ]


def _has_gpu(predictor: dict[str, Any]) -> bool:
    resources = predictor["model"].get("resources", {})
    return any(GPU_RESOURCE in resources.get(side, {}) for side in ("requests", "limits"))


def test_every_render_loads_the_triton_config_of_its_node_pool(all_builds, bundle):
    models = sorted(path for path in (bundle / "triton").iterdir() if path.is_dir())
    assert models, "the bundle has no Triton model"
    seen = {"cpu": 0, "gpu": 0}
    for build in all_builds:
        for where, predictor in _predictors(build):
            name = _config_name(predictor["model"].get("args", []))
            pool = "gpu" if _has_gpu(predictor) else "cpu"
            seen[pool] += 1
            if pool == "cpu":
                assert name is not None, f"{where}: a CPU predictor without {FLAG} loads the GPU config.pbtxt"
                assert "nodeSelector" not in predictor, f"{where}: CPU predictor pinned to a node pool"
            else:
                assert name is None, f"{where}: a GPU predictor must load config.pbtxt, not {FLAG}={name}"
            for model_dir in models:
                if name is not None:
                    assert (model_dir / "configs" / f"{name}.pbtxt").is_file(), (
                        f"{where}: {FLAG}={name} names no file in {model_dir.name}/configs/ of a real bundle"
                    )
                path = _triton_config_path(model_dir, name)
                expected = {"KIND_CPU"} if pool == "cpu" else {"KIND_GPU"}
                assert _instance_kinds(path) == expected, f"{where}: {path.relative_to(bundle)} on {pool}"
    assert seen["cpu"] >= 3 and seen["gpu"] >= 3, seen


def test_the_manifest_names_the_cpu_config_the_renders_pass(bundle, kustomize_builds):
    """The bundle's manifest records the CPU config name; the cpu-only component passes exactly that."""
    from hyperrec.export.bundle import read_manifest

    cpu_name = read_manifest(bundle)["triton"]["cpu_config_name"]
    ((_, predictor),) = _predictors(kustomize_builds["components/cpu-only"])
    assert _config_name(predictor["model"]["args"]) == cpu_name


def test_a_misspelt_config_name_is_caught(bundle):
    """Triton would fall back to the GPU config.pbtxt; the resolution here must show that, not hide it."""
    model_dir = next(path for path in (bundle / "triton").iterdir() if path.is_dir())
    assert _triton_config_path(model_dir, "cpu-typo") == model_dir / "config.pbtxt"
    assert _instance_kinds(_triton_config_path(model_dir, "cpu-typo")) == {"KIND_GPU"}
    assert _config_name(["--model-store=/mnt/models", FLAG, "cpu"]) == "cpu"
