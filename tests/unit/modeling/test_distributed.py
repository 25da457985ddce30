"""Fine-tuning under torchrun: 2 CPU processes on gloo train the same model as one process.

The real entry point runs twice on a tiny dataset: ``hyperrec fine-tune`` in one process, and the same
command under ``torchrun --nproc_per_node 2``. Each process takes half of every global batch and weighs its
mean loss by its share of the batch's predicted positions, so with a full softmax the averaged gradient is the
single-process gradient up to float rounding, and the trained weights must agree to that rounding. A few
steps, bounded by max_epochs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from modeling_fixtures import cyclic_sequences, write_prepared

from hyperrec.modeling.finetune import load_state

EPOCHS = 3


def _config(tmp_path: Path, tiny_bert_path: Path) -> Path:
    training = {"max_epochs": EPOCHS, "batch_size": 16, "learning_rate": 5e-3, "patience": EPOCHS,
                "max_train_seconds": None, "unfreeze_schedule": {0: 0}, "warmup_ratio": 0.0}
    config = {
        "output_dir": str(tmp_path / "run"),
        "modeling": {
            "train": ["next_item_lm"],
            "runtime": {"threads": 1, "device": "cpu", "progress": False, "seed": 7},
            "item_encoder": {"model_path": str(tiny_bert_path), "max_length": 24, "batch_size": 16,
                             "cache_dir": None},
            "next_item": {"d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 8, "dropout": 0.0,
                          "training": training},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fine_tune(prefix: list[str], config: Path, prepared: Path, output: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    command = [
        *prefix,
        "-m",
        "hyperrec.cli",
        "fine-tune",
        "--config",
        str(config),
        "--prepared",
        str(prepared),
        "--output",
        str(output),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def runs(tmp_path: Path, tiny_bert_path: Path) -> dict[str, Path]:
    prepared = write_prepared(tmp_path / "prepared", cyclic_sequences(40, 24, 14), 24).root
    config = _config(tmp_path, tiny_bert_path)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _fine_tune([sys.executable], config, prepared, single)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                "127.0.0.1", "--master_port", str(_free_port())]
    done = _fine_tune(torchrun, config, prepared, ddp)
    assert "rank 1 of 2 (gloo)" in done.stderr
    return {"single": single / "next_item_lm", "ddp": ddp / "next_item_lm"}


def test_two_gloo_processes_train_the_weights_of_one(runs: dict[str, Path]) -> None:
    single, ddp = (load_state(runs[k] / "weights.safetensors") for k in ("single", "ddp"))
    assert single.keys() == ddp.keys()
    for name, tensor in single.items():
        if not tensor.is_floating_point():  # masks and counts (e.g. the text-only items) must be equal
            assert tensor.equal(ddp[name]), name
            continue
        assert (tensor - ddp[name]).abs().max() <= 1e-4 + 1e-3 * tensor.abs().max(), name
    results = {k: json.loads((runs[k] / "model.json").read_text())["train_result"] for k in runs}
    # 40 users x 2 windows (12 train items, max_seq_len 8) = 80 windows, 16 per step: 5 steps an epoch
    assert results["single"]["steps"] == results["ddp"]["steps"] == EPOCHS * 5
    for a, b in zip(results["single"]["history"], results["ddp"]["history"], strict=True):
        assert abs(a["val_ndcg@10"] - b["val_ndcg@10"]) <= 0.02
