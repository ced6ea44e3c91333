"""SuperPoint-Lite by distillation: a small student learns a trained SuperPoint's outputs.

Why distillation rather than the paper's recipe: the student can only be as good as the labels,
and the trained SuperPoint already encodes two rounds of homographic adaptation plus a learned
descriptor. Its dense outputs give the student a target at every cell (not just the ~150 label
points of a photo), so a small network converges in a few thousand CPU iterations.

The batch is the ``superpoint`` task's (photos A and their warps B, one forward of ``2B``
images). Per valid cell (docs/keypoints.md, "SuperPoint-Lite")::

    loss_distill_det  = detector_weight   · KL(teacher's 65-way softmax ‖ student's)
    loss_distill_desc = descriptor_weight · (1 − ⟨d_student, d_teacher⟩)   (unit descriptors)
    + label_weight · the paper's three label losses (0 by default: pure distillation)

The teacher is frozen, in eval mode, on the task (never in the model's checkpoint or the
optimiser); evaluation is the ``superpoint`` task's homography benchmark of the student.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import pointforge
from pointforge.config.schema import Config
from pointforge.models.loading import read_state_dict
from pointforge.registry import TASKS
from pointforge.tasks.keypoints.labels import valid_mask_to_cells
from pointforge.tasks.keypoints.magicpoint import DESCRIPTOR_KEYS, build_keypoint_model
from pointforge.tasks.keypoints.options import DistillOptions, check_distill
from pointforge.tasks.keypoints.predictor import build_model_for_state_dict
from pointforge.tasks.keypoints.superpoint import SuperPointTask


def distill_losses(
    student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over valid cells of the detector KL and the descriptor cosine distance.

    ``student`` / ``teacher``: ``logits (N, 65, Hc, Wc)`` and unit ``descriptors
    (N, D, Hc, Wc)``; ``valid (N, Hc, Wc)`` bool. Both terms are 0 exactly when the student
    reproduces the teacher; with no valid cell both are 0 (and still carry a gradient graph).
    """
    log_s = F.log_softmax(student["logits"].float(), dim=1)
    log_t = F.log_softmax(teacher["logits"].float(), dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1)  # (N, Hc, Wc)
    cos = (student["descriptors"].float() * teacher["descriptors"].float()).sum(dim=1)
    weight = valid.float()
    count = weight.sum().clamp(min=1.0)
    return (kl * weight).sum() / count, ((1.0 - cos) * weight).sum() / count


@TASKS.register("superpoint_distill")
class SuperPointDistillTask(SuperPointTask):
    """Train a (small) SuperPoint to reproduce a trained one (``distill.teacher``)."""

    options = DistillOptions
    default_dataset = "warped_pairs"
    default_model = "superpoint_lite"

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        self._teacher: nn.Module | None = None

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        check_distill(cfg)

    def build_model(self) -> nn.Module:
        # The student starts fresh (no MagicPoint detector fits the Lite shape) or from
        # model.weights; a full-size student may start from a MagicPoint, whose missing
        # descriptor head stays fresh as in task superpoint.
        model = build_keypoint_model(self.cfg, self.device, reinit=DESCRIPTOR_KEYS)
        if not getattr(model, "has_descriptor", False):
            raise ValueError(
                f"task superpoint_distill needs a student with a descriptor head, not "
                f"{self.cfg.model.name}"
            )
        return model

    @property
    def teacher_path(self) -> Path:
        t = self.cfg.distill.teacher
        return Path(t) if t is not None else pointforge.SUPERPOINT_WEIGHTS

    def teacher(self) -> nn.Module:
        """The frozen teacher, built from its weights' own architecture on first use."""
        if self._teacher is None:
            state = read_state_dict(self.teacher_path)
            if "convDa.weight" not in state:
                raise ValueError(
                    f"distill.teacher: {self.teacher_path} has no descriptor head; the teacher "
                    "must be a SuperPoint (detector + descriptor)"
                )
            model = build_model_for_state_dict(state).to(self.device).eval()
            if self.cfg.train.channels_last:
                model = model.to(memory_format=torch.channels_last)
            self._teacher = model.requires_grad_(False)
        return self._teacher

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = self.model_input(torch.cat([batch["image"], batch["warped_image"]]))
        out = model(images)
        with torch.no_grad():
            target = self.teacher()(images)
        valid = valid_mask_to_cells(torch.cat([batch["valid_mask"], batch["warped_valid_mask"]]))
        d = self.cfg.distill
        det, desc = distill_losses(out, target, valid.to(out["logits"].device))
        losses = {
            "loss_distill_det": d.detector_weight * det,
            "loss_distill_desc": d.descriptor_weight * desc,
        }
        if d.label_weight > 0:
            for name, value in self.label_losses(out, batch).items():
                losses[name] = d.label_weight * value
        return losses
