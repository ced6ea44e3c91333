"""SuperPoint joint training: detector + descriptor on warped pairs of labelled photos (§5).

The batch holds photos A and their warps B (:mod:`pointforge.data.datasets.warped_pairs`);
both go through the network in **one** forward of ``2B`` images (one pass over the weights,
BatchNorm sees both views). Losses, as in the paper (docs/keypoints.md)::

    loss_det     = CE(logits_A, labels_A)         (65-way, valid cells of A)
    loss_det_warped = CE(logits_B, labels_B)      (valid cells of B)
    loss_desc    = weight · hinge(desc_A, desc_B, H)   (weight = λ = 1e-4 in the paper)

Evaluation is the homography benchmark (docs/evaluation.md) on photos kept out of training
(``data.path``; ``pointforge data photos --split val``), with the benchmark's viewpoint and
illumination pair settings, so that the periodic numbers are the ones the report uses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

import pointforge.data.datasets.warped_pairs  # registers the dataset
import pointforge.models.superpoint  # noqa: F401  (registers the models)
from pointforge.config.compose import replace_section
from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.data.datasets.homography_pairs import DEFAULT_ILLUMINATION, DEFAULT_VIEWPOINT
from pointforge.evaluation.report import format_tables
from pointforge.registry import DATASETS, TASKS
from pointforge.tasks.keypoints.descriptor_loss import descriptor_loss
from pointforge.tasks.keypoints.homography_eval import HomographyEvalTask
from pointforge.tasks.keypoints.labels import (
    keypoint_map_to_labels,
    points_to_keypoint_map,
    valid_mask_to_cells,
)
from pointforge.tasks.keypoints.losses import detector_loss

# DESCRIPTOR_KEYS: the descriptor head's parameter names, absent from a MagicPoint checkpoint
# (they keep their fresh initialisation here).
from pointforge.tasks.keypoints.magicpoint import (
    DESCRIPTOR_KEYS,
    KeypointTask,
    build_keypoint_model,
)
from pointforge.tasks.keypoints.options import (
    SuperPointOptions,
    check_adaptation,
    check_descriptor_loss,
    check_homography_eval,
)


@TASKS.register("superpoint")
class SuperPointTask(KeypointTask):
    """Joint detector + descriptor training from a MagicPoint (or SuperPoint) checkpoint."""

    options = SuperPointOptions
    default_dataset = "warped_pairs"
    default_model = "superpoint"

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        check_descriptor_loss(cfg)
        check_homography_eval(cfg)
        check_adaptation(cfg)
        t = getattr(cfg.data, "label_threshold", None)
        need(
            t is None or 0.0 <= t < 1.0,
            "data.label_threshold",
            f"must be in [0, 1) or null, got {t}",
        )

    def build_model(self) -> nn.Module:
        # Starting from MagicPoint: the descriptor head is missing and stays fresh.
        model = build_keypoint_model(self.cfg, self.device, reinit=DESCRIPTOR_KEYS)
        if not getattr(model, "has_descriptor", False):
            raise ValueError(
                f"task superpoint needs a model with a descriptor head, not {self.cfg.model.name}"
            )
        return model

    def build_dataset(self, split: str = "train", **overrides: Any) -> torch.utils.data.Dataset:
        d = self.cfg.data
        kwargs: dict[str, Any] = {
            "root": d.root,
            "labels": d.labels,
            "image_size": tuple(d.image_size),
            "photometric": d.photometric,
            "homographic": d.homographic,
        }
        if getattr(d, "label_threshold", None) is not None:
            kwargs["label_threshold"] = d.label_threshold
        kwargs.update(overrides)
        if d.name is None:
            raise ValueError("config key 'data.name' is null (load_config sets the task's default)")
        return DATASETS.build(d.name, **kwargs)

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = self.model_input(torch.cat([batch["image"], batch["warped_image"]]))
        return self.label_losses(model(images), batch)

    def label_losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """The paper's three losses of one forward ``out`` of ``cat([A, B])``."""
        n, _, height, width = batch["image"].shape  # (B, 1, H, W) each of A and B
        logits, desc = out["logits"], out["descriptors"]  # (2B, 65, Hc, Wc), (2B, D, Hc, Wc)
        points = list(batch["points"]) + list(batch["warped_points"])
        labels = keypoint_map_to_labels(points_to_keypoint_map(points, height, width))
        valid = valid_mask_to_cells(torch.cat([batch["valid_mask"], batch["warped_valid_mask"]]))
        dl = self.cfg.descriptor_loss
        return {
            "loss_det": detector_loss(logits[:n], labels[:n], valid[:n]),
            "loss_det_warped": detector_loss(logits[n:], labels[n:], valid[n:]),
            "loss_desc": dl.weight
            * descriptor_loss(desc[:n], desc[n:], batch["homography"], valid[n:], dl),
        }

    @classmethod
    def format_metrics(cls, metrics: dict[str, float]) -> str:
        return format_tables(metrics)

    def benchmark_config(self) -> Config:
        """This config turned into the homography benchmark's (task ``homography_eval``) on
        ``data.path`` (null = scikit-image's photos), with the benchmark's pair settings."""
        data = replace_section(
            self.cfg.data,
            name="homography_pairs",
            homographic=DEFAULT_VIEWPOINT,
            photometric=DEFAULT_ILLUMINATION,
        )
        # The model being trained is passed in; model.weights (its starting point) would
        # misname it in the report.
        model = dataclasses.replace(self.cfg.model, weights=None)
        return dataclasses.replace(self.cfg, task="homography_eval", data=data, model=model)

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            bench = HomographyEvalTask(self.benchmark_config(), self.device)
            return bench.evaluate(model, output_dir)
        finally:
            model.train(was_training)
