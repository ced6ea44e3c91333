"""Box operations shared by detection and radar-camera fusion: overlap measures and their
losses (:mod:`pointforge.ops.iou`) and the NMS families (:mod:`pointforge.ops.nms`).
See docs/ops.md for the conventions (box format, degenerate boxes, return orders)."""

from __future__ import annotations

from pointforge.ops.iou import (
    aligned_box_iou,
    aligned_complete_box_iou,
    aligned_distance_box_iou,
    aligned_generalized_box_iou,
    box_iou,
    box_iou_loss,
    complete_box_iou,
    complete_box_iou_loss,
    distance_box_iou,
    distance_box_iou_loss,
    generalized_box_iou,
    generalized_box_iou_loss,
)
from pointforge.ops.nms import (
    batched_diou_nms,
    batched_nms,
    batched_soft_nms,
    batched_weighted_nms,
    diou_nms,
    nms,
    soft_nms,
    weighted_nms,
)

__all__ = [
    "aligned_box_iou",
    "aligned_complete_box_iou",
    "aligned_distance_box_iou",
    "aligned_generalized_box_iou",
    "batched_diou_nms",
    "batched_nms",
    "batched_soft_nms",
    "batched_weighted_nms",
    "box_iou",
    "box_iou_loss",
    "complete_box_iou",
    "complete_box_iou_loss",
    "diou_nms",
    "distance_box_iou",
    "distance_box_iou_loss",
    "generalized_box_iou",
    "generalized_box_iou_loss",
    "nms",
    "soft_nms",
    "weighted_nms",
]
