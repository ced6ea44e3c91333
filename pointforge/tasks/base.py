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

from pointforge.config.schema import Config


class Task(abc.ABC):
    """Base class. Subclasses are registered in :data:`pointforge.registry.TASKS`."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device

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
