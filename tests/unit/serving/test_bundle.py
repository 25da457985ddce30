"""The serving bundle: contract checks, Triton configs, checksums, ONNX vs torch."""

import json
import shutil

import numpy as np
import pytest

from hyperrec.errors import BundleError
from hyperrec.export.bundle import build_bundle, verify_bundle
from hyperrec.export.onnx_contract import check_onnx_matches_torch, export_ranker_onnx
from hyperrec.export.tiny import demo_items, sample_inputs, tiny_ranker
from hyperrec.export.triton_config import model_config_pb2, parse_triton_config


def test_manifest_lists_contract_lineage_and_every_file(demo_bundle):
    manifest = json.loads((demo_bundle / "manifest.json").read_text())
    assert (manifest["model_name"], manifest["version"], manifest["n_items"], manifest["max_history"]) == (
        "ranker", "demo-1", 60, 8)
    assert manifest["inputs"] == [
        {"name": "history", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "segment", "datatype": "INT64", "shape": [-1]},
    ]
    assert manifest["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 60]},
                                   {"name": "top_ids", "datatype": "INT64", "shape": [-1, 60]},
                                   {"name": "top_scores", "datatype": "FP32", "shape": [-1, 60]}]
    assert "onnx_vs_torch_max_abs_diff" in manifest["lineage"]
    assert set(manifest["files"]) == {
        "items.parquet", "item_embeddings.npy", "segments.parquet", "segment_popularity.parquet",
        "triton/ranker/config.pbtxt", "triton/ranker/configs/cpu.pbtxt", "triton/ranker/1/model.onnx",
    }
    assert verify_bundle(demo_bundle)["version"] == "demo-1"


def test_triton_configs_parse_into_model_config_with_exact_dims(demo_bundle):
    mc = model_config_pb2()
    gpu = parse_triton_config(demo_bundle / "triton/ranker/config.pbtxt")
    cpu = parse_triton_config(demo_bundle / "triton/ranker/configs/cpu.pbtxt")
    assert isinstance(gpu, mc.ModelConfig)
    for config in (gpu, cpu):
        assert (config.name, config.platform, config.max_batch_size) == ("ranker", "onnxruntime_onnx", 64)
        history, segment = config.input
        assert (history.name, history.data_type, list(history.dims)) == ("history", mc.TYPE_INT64, [8])
        assert (segment.name, list(segment.dims), list(segment.reshape.shape)) == ("segment", [1], [])
        assert segment.HasField("reshape")
        scores, top_ids, top_scores = config.output
        assert (scores.name, scores.data_type, list(scores.dims)) == ("scores", mc.TYPE_FP32, [60])
        assert (top_ids.name, top_ids.data_type, list(top_ids.dims)) == ("top_ids", mc.TYPE_INT64, [60])
        assert (top_scores.name, top_scores.data_type, list(top_scores.dims)) == (
            "top_scores",
            mc.TYPE_FP32,
            [60],
        )
        assert list(config.dynamic_batching.preferred_batch_size) == [8, 16, 32]
        assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert gpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert cpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU


def test_verify_bundle_catches_changed_missing_and_unlisted_files(demo_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo_bundle, copy)
    (copy / "triton/ranker/1/model.onnx").write_bytes(b"tampered")
    (copy / "notes.txt").write_text("hi")
    (copy / "segments.parquet").unlink()
    with pytest.raises(BundleError) as info:
        verify_bundle(copy)
    message = str(info.value)
    assert "sha256 mismatch: triton/ranker/1/model.onnx" in message
    assert "not in manifest: notes.txt" in message and "missing: segments.parquet" in message
    with pytest.raises(BundleError, match="no manifest.json"):
        verify_bundle(tmp_path)


def test_onnx_export_with_the_default_exporter_matches_torch(tmp_path):
    import torch

    model = tiny_ranker(30)
    samples = sample_inputs(30, 6)
    path = export_ranker_onnx(model, tmp_path / "m.onnx", [torch.from_numpy(v) for v in samples.values()])
    # Other batch and sequence sizes than the export sample: the axes are free.
    other = sample_inputs(30, 11, batch=7, seed=3)
    assert check_onnx_matches_torch(model, path, other, atol=1e-4) <= 1e-4
    with torch.no_grad():
        model.bias.add_(1.0)  # the torch module drifts away from the exported graph
    with pytest.raises(BundleError, match="differs from torch"):
        check_onnx_matches_torch(model, path, other, atol=1e-4)


def test_build_bundle_refuses_a_model_that_does_not_fit_the_catalogue(tmp_path, demo_bundle):
    onnx_file = demo_bundle / "triton/ranker/1/model.onnx"
    common = {"model_name": "ranker", "version": "1", "max_history": 8, "lineage": {}}
    with pytest.raises(BundleError, match=r"expected \(1, 59\)"):
        build_bundle(onnx_file, demo_items(59), tmp_path / "b1", **common)
    with pytest.raises(BundleError, match="lacks columns"):
        build_bundle(onnx_file, demo_items(60).drop(columns=["popularity"]), tmp_path / "b2", **common)
    shuffled = demo_items(60).assign(item_idx=np.arange(60)[::-1])
    with pytest.raises(BundleError, match="row number"):
        build_bundle(onnx_file, shuffled, tmp_path / "b3", **common)
    with pytest.raises(BundleError, match="already exists"):
        build_bundle(onnx_file, demo_items(60), demo_bundle, **common)
    with pytest.raises(BundleError, match="must be 1-128"):
        build_bundle(onnx_file, demo_items(60), tmp_path / "b4", **{**common, "model_name": "../evil"})
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no half-written staging folders
