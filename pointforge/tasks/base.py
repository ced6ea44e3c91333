"""The Task contract: everything task-specific the engine needs, behind four methods.

Why: the Trainer must know nothing about keypoints, boxes or classes. A Task owns how its
model is built, how a batch becomes named losses, how it is evaluated and how it predicts.
Adding a task family means adding a Task, never editing the Trainer.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.config.schema import Config
from pointforge.data.loader import build_train_loader


class Task(abc.ABC):
    """Base class. Subclasses are registered in :data:`pointforge.registry.TASKS`."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device

    @property
    def pin_memory(self) -> bool:
        """``data.pin_memory``, where null means: pin when training on CUDA."""
        pin = self.cfg.data.pin_memory
        return pin if pin is not None else self.device.type == "cuda"

    def endless_loader(self, dataset: Dataset, start_iter: int) -> Iterator[dict[str, Any]]:
        """The engine's seeded, resumable, rank-sharded loader over ``dataset`` with the
        ``data.*`` batch size and workers: what :meth:`build_train_loader` usually returns."""
        d = self.cfg.data
        return build_train_loader(
            dataset,
            batch_size=d.batch_size,
            num_workers=d.num_workers or 0,
            seed=self.cfg.seed,
            start_iter=start_iter,
            pin_memory=self.pin_memory,
        )

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh model (weights from ``cfg.model.weights`` if set), on ``self.device``."""

    @abc.abstractmethod
    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        """Endless batch iterator positioned at iteration ``start_iter`` (exact resume)."""

    @abc.abstractmethod
    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named scalar losses for one batch (already on the device); the Trainer sums them."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        """A flat dict of metrics; may write artefacts (plots) under ``output_dir/eval``."""
