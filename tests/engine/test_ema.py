"""EMA of the weights: the update rule, checkpointing, and evaluation of the EMA model."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from pointforge.config import load_config
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.ema import ModelEMA
from pointforge.engine.trainer import Trainer
from pointforge.models.loading import read_state_dict

from .conftest import BNTask, bn_mlp, bn_overrides


def test_ema_update_by_hand() -> None:
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(0.0)
    ema = ModelEMA(model, decay=0.9, tau=2.0)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    model[1].num_batches_tracked.fill_(5)
    ema.update(model)
    # d1 = 0.9 * (1 - e^-0.5) = 0.3541224; ema = d1 * 0 + (1 - d1) * 1
    assert ema.module[0].weight.item() == pytest.approx(0.6458776, abs=1e-6)
    with torch.no_grad():
        model[0].weight.fill_(3.0)
    ema.update(model)
    # d2 = 0.9 * (1 - e^-1) = 0.5689085; ema = d2 * 0.6458776 + (1 - d2) * 3 = 1.6607197
    assert ema.current_decay() == pytest.approx(0.9 * (1 - math.exp(-1.0)))
    assert ema.module[0].weight.item() == pytest.approx(1.6607197, abs=1e-6)
    assert ema.updates == 2
    # Integer buffers are copied, not averaged; the EMA copy has no gradients.
    assert ema.module[1].num_batches_tracked.item() == 5
    assert not any(p.requires_grad for p in ema.module.parameters())
    # The model's own weights are untouched by the update.
    assert model[0].weight.item() == 3.0


def test_decay_ramps_up_to_the_configured_value() -> None:
    ema = ModelEMA(nn.Linear(1, 1), decay=0.9998, tau=2000.0)
    ema.updates = 1
    assert ema.current_decay() < 0.001  # early weights are forgotten quickly
    ema.updates = 40_000  # 20 tau
    assert ema.current_decay() == pytest.approx(0.9998, abs=1e-6)


def test_ema_state_round_trips(tmp_path: Path) -> None:
    model = bn_mlp()
    ema = ModelEMA(model, decay=0.5, tau=1.0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    other = ModelEMA(bn_mlp(), decay=0.5, tau=1.0)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1
    for a, b in zip(ema.module.state_dict().values(), other.module.state_dict().values()):
        assert torch.equal(a, b)


def test_trainer_updates_ema_after_each_step_and_evaluates_it(
    tmp_path: Path, bn_trainer: Callable[..., Trainer]
) -> None:
    trainer = bn_trainer(tmp_path / "t", "train.ema.enabled=true", "train.ema.tau=1")
    assert trainer.eval_model is trainer.ema.module
    data = trainer.task.build_train_loader(0)
    trainer.model.train()
    for _ in range(3):
        trainer.run_step(data)
        trainer.iter += 1
    assert trainer.ema.updates == 3
    assert "ema" in trainer.state_dict()
    ema_w, model_w = trainer.ema.module[0].weight, trainer.model[0].weight
    assert not torch.equal(ema_w, model_w)
    plain = bn_trainer(tmp_path / "p")
    assert plain.eval_model is plain.model and "ema" not in plain.state_dict()


def test_run_evaluates_the_ema_weights_and_saves_them(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_config(None, bn_overrides(out, "train.ema.enabled=true", "train.ema.tau=2"))
    metrics = run.train(cfg)
    final = load_checkpoint(out / "checkpoints/final.pth")
    assert final["ema"]["updates"] == cfg.solver.max_iter
    task = BNTask(cfg, torch.device("cpu"))
    ema_model, raw_model = bn_mlp(), bn_mlp()
    ema_model.load_state_dict(final["ema"]["model"])
    raw_model.load_state_dict(final["model"])
    assert metrics == task.evaluate(ema_model)
    assert metrics != task.evaluate(raw_model)
    # Weight files read for eval/detect/fine-tuning give the EMA weights that were evaluated.
    read = read_state_dict(out / "checkpoints/final.pth")
    assert all(torch.equal(read[k], v) for k, v in final["ema"]["model"].items())
