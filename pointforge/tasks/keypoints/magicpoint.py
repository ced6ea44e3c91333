"""MagicPoint: the SuperPoint detector trained on Synthetic Shapes.

The task glues the generic engine to keypoint pieces: the dataset yields images, ragged
ground-truth points and valid masks; ``training_step`` turns points into 65-class cell labels
on the device (so the random "one keypoint per cell" choice uses the checkpointed torch RNG)
and returns the detector cross-entropy. Evaluation follows DESIGN.md §4.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

import pointforge.data.datasets.synthetic_shapes
import pointforge.models.superpoint  # noqa: F401  (registers the models)
from pointforge.config.schema import Config
from pointforge.models.loading import load_weights
from pointforge.registry import DATASETS, MODELS, TASKS
from pointforge.tasks.base import Task
from pointforge.tasks.keypoints.evaluate import ShapesDetectionEvaluator
from pointforge.tasks.keypoints.labels import (
    keypoint_map_to_labels,
    points_to_keypoint_map,
    valid_mask_to_cells,
)
from pointforge.tasks.keypoints.losses import detector_loss

# Descriptor-head parameter names (MagicLeap v1 convD*, our optional bnD*).
DESCRIPTOR_KEYS = (r"convD", r"bnD")


@TASKS.register("magicpoint")
class MagicPointTask(Task):
    """Detector-only training on procedurally generated Synthetic Shapes."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        self._evaluator: ShapesDetectionEvaluator | None = None

    def build_model(self) -> nn.Module:
        model: nn.Module = MODELS.build(self.cfg.model.name, batchnorm=self.cfg.model.batchnorm)
        if self.cfg.model.weights:
            load_weights(
                model,
                self.cfg.model.weights,
                reinit=self.cfg.model.load.reinit_mismatched,
                # A detector-only model may start from full SuperPoint weights: it ignores the
                # descriptor head (convDa/convDb and their BatchNorms); anything else must fit.
                allow_unexpected=DESCRIPTOR_KEYS,
            )
        model = model.to(self.device)
        if self.cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def build_dataset(self, split: str, **overrides: Any) -> torch.utils.data.Dataset:
        d = self.cfg.data
        kwargs: dict[str, Any] = {
            "split": split,
            "image_size": tuple(d.image_size),
            "seed": self.cfg.seed,
            "primitives": d.primitives,
            "photometric": d.photometric if d.photometric.enabled else None,
            "homographic": d.homographic if d.homographic.enabled else None,
        }
        kwargs.update(overrides)
        return DATASETS.build(d.name, **kwargs)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        return self.endless_loader(self.build_dataset("train"), start_iter)

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images: torch.Tensor = batch["image"]  # (B, 1, H, W)
        if self.cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        height, width = images.shape[-2:]
        out = model(images)
        kmap = points_to_keypoint_map(batch["points"], height, width)  # (B, H, W)
        labels = keypoint_map_to_labels(kmap)  # (B, H/8, W/8), dustbin = 64
        valid = valid_mask_to_cells(batch["valid_mask"])  # (B, H/8, W/8)
        return {"loss_det": detector_loss(out["logits"], labels, valid)}

    @property
    def evaluator(self) -> ShapesDetectionEvaluator:
        if self._evaluator is None:
            self._evaluator = ShapesDetectionEvaluator(self.cfg)
        return self._evaluator

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            return self.evaluator.evaluate(model, self.device, output_dir)
        finally:
            model.train(was_training)
