"""The fine-tuning recipe: freezing schedule, optimizer groups, warm-up, early stopping, checkpoints."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hyperrec.modeling.finetune import (
    apply_freezing,
    build_optimizer,
    layers_for_epoch,
    load_state,
    param_groups,
    warmup_schedule,
)
from hyperrec.modeling.item_encoder import TextEncoder
from hyperrec.modeling.settings import RuntimeSettings
from hyperrec.modeling.trainer import EarlyStopping, Trainer, TrainingTimeout, TrainResult
from hyperrec.modeling.training_settings import TrainingSettings


def test_layers_for_epoch_follows_the_schedule() -> None:
    schedule = {0: 1, 2: 3, 5: -1}
    assert [layers_for_epoch(schedule, e) for e in range(7)] == [1, 1, 3, 3, 3, -1, -1]


def test_freezing_freezes_exactly_the_lower_layers(tiny_bert_path: Path) -> None:
    encoder = TextEncoder(tiny_bert_path)
    assert not encoder.modified
    layer0, layer1 = (list(layer.parameters()) for layer in encoder.transformer_layers())
    embeddings = list(encoder.model.embeddings.parameters())

    apply_freezing(encoder, 0)
    assert not any(p.requires_grad for p in encoder.model.parameters())
    assert not encoder.modified  # frozen weights equal the files: the cache stays valid

    names = apply_freezing(encoder, 1)
    assert all(p.requires_grad for p in layer1) and not any(p.requires_grad for p in layer0)
    assert not any(p.requires_grad for p in embeddings)
    assert names and all(".layer.1." in n for n in names)
    assert encoder.modified

    apply_freezing(encoder, 2)
    assert all(p.requires_grad for p in layer0 + layer1) and not any(p.requires_grad for p in embeddings)
    apply_freezing(encoder, -1)
    assert all(p.requires_grad for p in encoder.model.parameters())


def test_param_groups_learning_rates_and_decay() -> None:
    lm = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    head = nn.Linear(4, 1)
    settings = TrainingSettings(learning_rate=1e-3, lm_learning_rate=2e-5, weight_decay=0.1)
    groups = {g["name"]: g for g in param_groups([lm], [head], settings)}
    assert groups["lm"]["lr"] == 2e-5 and groups["lm"]["weight_decay"] == 0.1
    assert groups["lm_no_decay"]["weight_decay"] == 0.0 and len(groups["lm_no_decay"]["params"]) == 3
    assert groups["head"]["lr"] == 1e-3 and groups["head_no_decay"]["lr"] == 1e-3
    optimizer = build_optimizer(list(groups.values()), settings, torch.device("cpu"))
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults.get("fused")


def test_linear_warmup_then_decay() -> None:
    settings = TrainingSettings(warmup_ratio=0.2, linear_decay=True)
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = warmup_schedule(optimizer, total_steps=10, settings=settings)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.125)
    assert all(a >= b for a, b in itertools.pairwise(lrs[1:]))


def test_early_stopping_counts_patience() -> None:
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.1) and stopper.update(0.2)
    assert not stopper.update(0.2) and not stopper.should_stop
    assert not stopper.update(float("nan")) and stopper.should_stop
    assert stopper.best == 0.2


class _Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def test_trainer_stops_early_restores_best_and_checkpoints(tmp_path: Path) -> None:
    module = _Counter()
    optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
    values = iter([0.1, 0.5, 0.3, 0.2, 0.9, 0.9])
    seen_weights = []
    metrics: list[tuple[dict, int]] = []

    def validate(_model) -> float:
        seen_weights.append(float(module.w.detach()))
        return next(values)

    def step(_batch):
        return -module.w.sum(), 4  # gradient -1: every step adds 1 to w

    settings = TrainingSettings(max_epochs=10, patience=2, checkpoint_dir=tmp_path / "ckpt", grad_clip=None,
                                log_every_steps=1)
    trainer = Trainer(settings, RuntimeSettings(progress=False), validate=validate,
                      on_metrics=lambda m, s: metrics.append((m, s)))
    result = trainer.fit(module, optimizer, recommender=None, epoch_batches=lambda e: range(2), step=step,
                         device=torch.device("cpu"))
    assert result.epochs_run == 4 and result.stopped_early  # 0.5 at epoch 1, then two worse evaluations
    assert result.best_epoch == 1 and result.best_metric == 0.5 and result.steps == 8
    assert float(module.w.detach()) == seen_weights[1] == 4.0  # best state restored
    assert float(load_state(tmp_path / "ckpt" / "best.safetensors")["w"]) == 4.0
    assert (tmp_path / "ckpt" / "best.json").exists()
    assert result.examples == 32 and result.examples_per_second > 0
    assert any("val_ndcg@10" in m for m, _ in metrics) and any("train_loss" in m for m, _ in metrics)


def test_wall_clock_limit_is_a_safety_net_that_fails_loudly() -> None:
    """A run past max_train_seconds raises instead of keeping a model whose quality depends on machine
    load."""
    module = _Counter()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    settings = TrainingSettings(max_epochs=50, max_steps_per_epoch=3, max_train_seconds=1e-6, patience=5)
    with pytest.raises(TrainingTimeout, match="max_train_seconds safety net"):
        Trainer(settings, RuntimeSettings(progress=False), validate=lambda m: 1.0).fit(
            module, optimizer, recommender=None, epoch_batches=lambda e: range(100),
            step=lambda b: (module.w.sum() ** 2, 1), device=torch.device("cpu"))


def test_trainer_respects_step_caps() -> None:
    module = _Counter()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    settings = TrainingSettings(max_epochs=2, max_steps_per_epoch=3)
    result = Trainer(settings, RuntimeSettings(progress=False)).fit(
        module, optimizer, recommender=None, epoch_batches=lambda e: range(100),
        step=lambda b: (module.w.sum() ** 2, 1), device=torch.device("cpu"))
    assert result.steps == 6 and result.best_metric is None


def test_trainer_applies_the_unfreeze_schedule(tiny_bert_path: Path) -> None:
    """Epoch 0 trains only the top layer, epoch 1 both: lower-layer weights change only in epoch 1."""
    encoder = TextEncoder(tiny_bert_path, max_length=12)
    lower = encoder.transformer_layers()[0]
    upper = encoder.transformer_layers()[1]
    snapshots = []

    def validate(_model) -> float:
        snapshots.append((lower.attention.self.query.weight.detach().clone(),
                          upper.attention.self.query.weight.detach().clone()))
        return float(len(snapshots))  # always improving: keep the last state

    def step(_batch):
        vectors = encoder.encode_tokens(["love story", "war night"])
        return (vectors[:, 0] - 1.0).pow(2).mean(), 2

    before = (
        lower.attention.self.query.weight.detach().clone(),
        upper.attention.self.query.weight.detach().clone(),
    )
    settings = TrainingSettings(max_epochs=2, unfreeze_schedule={0: 1, 1: 2}, lm_learning_rate=1e-2)
    optimizer = build_optimizer(param_groups([encoder], [], settings), settings, torch.device("cpu"))
    Trainer(settings, RuntimeSettings(progress=False), validate=validate).fit(
        encoder, optimizer, recommender=None, epoch_batches=lambda e: range(3), step=step,
        device=torch.device("cpu"), encoders=[encoder])
    (low0, up0), (low1, _) = snapshots
    assert torch.equal(low0, before[0]) and not torch.equal(up0, before[1])
    assert not torch.equal(low1, low0)
    assert np.isfinite(low1.numpy()).all()


def test_train_results_of_older_versions_still_read() -> None:
    """model.json files written while wall-clock budgets existed carry stopped_by_time; it is ignored."""
    result = TrainResult.from_dict({"epochs_run": 3, "best_metric": 0.05, "stopped_by_time": True})
    assert result.epochs_run == 3 and result.best_metric == 0.05
    assert TrainResult.from_dict(result.to_dict()) == result
