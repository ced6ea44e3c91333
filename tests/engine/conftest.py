"""A tiny registered task with BatchNorm layers, shared by the EMA, PreciseBN and freeze tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.config import load_config
from pointforge.data.loader import build_train_loader
from pointforge.engine.trainer import Trainer
from pointforge.registry import TASKS
from pointforge.tasks.base import Task


class ShiftedPoints(Dataset):
    """96 fixed samples whose inputs have mean 2 and std 3, so BN statistics are far from the
    (0, 1) initial running stats and any update to them is visible."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = 2.0 + 3.0 * torch.randn(96, 4, generator=g)
        self.y = self.x.sum(1, keepdim=True).sin()

    def __len__(self) -> int:
        return 96

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.y[i]}


def bn_mlp() -> nn.Sequential:
    """(B, 4) → (B, 1): Linear-BN-ReLU twice, then a Linear head."""
    return nn.Sequential(
        nn.Linear(4, 8),  # 0
        nn.BatchNorm1d(8),  # 1
        nn.ReLU(),
        nn.Linear(8, 8),  # 3
        nn.BatchNorm1d(8),  # 4
        nn.ReLU(),
        nn.Linear(8, 1),  # 6
    )


@TASKS.register("test_bn_mlp")
class BNTask(Task):
    """Regression with a BatchNorm MLP; evaluation reports the mean of the output on fixed
    inputs, which depends on the BN running statistics and on the weights."""

    def build_model(self) -> nn.Module:
        torch.manual_seed(3)
        return bn_mlp().to(self.device)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        return build_train_loader(
            ShiftedPoints(), self.cfg.data.batch_size, 0, self.cfg.seed, start_iter
        )

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"mse": nn.functional.mse_loss(model(batch["x"]), batch["y"])}

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return {"out_mean": float(model(ShiftedPoints().x[:16]).mean())}
        finally:
            model.train(was_training)


def bn_overrides(out: Path, *extra: str) -> list[str]:
    return [
        "task=test_bn_mlp",
        "device=cpu",
        "data.batch_size=8",
        "data.num_workers=0",
        "solver.lr=0.01",
        "solver.max_iter=6",
        "train.checkpoint_period=2",
        "train.eval_period=3",
        "train.log_period=1",
        "train.progress_bar=false",
        f"output_dir={out}",
        *extra,
    ]


@pytest.fixture
def bn_trainer() -> Callable[..., Trainer]:
    """``bn_trainer(tmp_path, "key=value", ...)`` → a Trainer of :class:`BNTask` (no hooks)."""

    def make(out: Path, *extra: str) -> Trainer:
        cfg = load_config(None, bn_overrides(out, *extra))
        return Trainer(BNTask(cfg, torch.device("cpu")), cfg, out)

    return make
