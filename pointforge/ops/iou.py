"""Box overlap measures (IoU, GIoU, DIoU, CIoU) and the regression losses built on them.

Shared by box matching / evaluation (pairwise forms) and box regression (aligned forms and
losses). Boxes are ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2`` (callers' contract,
not checked: checking costs a device sync). Integer boxes are promoted to float32.

Shapes
    pairwise: ``(..., N, 4), (..., M, 4) -> (..., N, M)``
    aligned:  ``(..., 4), (..., 4) -> (...)`` (broadcast, e.g. ``(N, 4), (N, 4) -> (N,)``)
    losses:   aligned, then ``reduction`` "none" ``(...)`` | "mean" ``()`` | "sum" ``()``

Definitions (A, B boxes; C their smallest enclosing box; rho the distance between their
centres; c the diagonal of C; w, h widths and heights):
    IoU  = |A∩B| / |A∪B|
    GIoU = IoU - (|C| - |A∪B|) / |C|                     (Rezatofighi et al., CVPR 2019)
    DIoU = IoU - rho² / c²                                (Zheng et al., AAAI 2020, Eq. 6)
    CIoU = DIoU - alpha·v,  v = 4/π² (atan(w_B/h_B) - atan(w_A/h_A))²,
           alpha = v / ((1 - IoU) + v)                    (same paper, Eqs. 9-11)
    alpha is a trade-off weight and is not differentiated (as in the authors' code and in
    torchvision's ``complete_box_iou_loss``).

Degenerate boxes (documented conventions, all values finite, gradients finite):
    * union = 0 (both boxes have zero area): IoU = 0 — there is no area to overlap, so two
      identical points do *not* count as a match.
    * |C| = 0 (both boxes on one line, or the same point): GIoU penalty = 0, so GIoU = 0.
    * c = 0 (both boxes are the same point): DIoU penalty = 0, so DIoU = 0.
    * aspect term: the angle is ``atan2(w, h)`` (π/2 for zero height); if either box is a
      point (w = h = 0) its aspect is undefined and v = 0. alpha = 0 when 1 - IoU + v = 0.
    Hence for two identical zero-area boxes IoU = GIoU = DIoU = CIoU = 0 and every loss is 1.
    Empty inputs give empty outputs; "mean" over an empty set is 0 (still attached to graph).

Which parts come from torchvision 0.29.1: pairwise IoU is ``torchvision.ops.box_iou`` (its
only non-finite case, union = 0, is overwritten with the convention above) and the DIoU loss
is ``torchvision.ops.distance_box_iou_loss`` (its epsilons reproduce the conventions above).
torchvision's pairwise ``generalized_box_iou`` / ``distance_box_iou`` / ``complete_box_iou``
return NaN for zero-area pairs (0/0), its ``complete_box_iou_loss`` returns NaN for point
boxes (atan(0/0)), and its ``generalized_box_iou_loss`` has gradients of order 1/eps = 1e7
for collinear zero-height boxes; those are computed here from the closed forms above (they
agree with torchvision on boxes of positive area, see ``tests/ops/test_iou.py``).
torchvision has no aligned forms and no plain IoU loss.
"""

from __future__ import annotations

import math

import torch
import torchvision.ops as tvops
from torch import Tensor

__all__ = [
    "aligned_box_iou",
    "aligned_complete_box_iou",
    "aligned_distance_box_iou",
    "aligned_generalized_box_iou",
    "box_iou",
    "box_iou_loss",
    "complete_box_iou",
    "complete_box_iou_loss",
    "distance_box_iou",
    "distance_box_iou_loss",
    "generalized_box_iou",
    "generalized_box_iou_loss",
]

REDUCTIONS = ("none", "mean", "sum")


def _float(boxes: Tensor, name: str) -> Tensor:
    """Check the trailing dimension and promote integer boxes to float32."""
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"{name}: expected boxes of shape (..., 4), got {tuple(boxes.shape)}")
    return boxes if boxes.is_floating_point() else boxes.float()


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0; finite value and gradient everywhere."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def _aspect_angle(w: Tensor, h: Tensor) -> Tensor:
    """``atan(w / h)`` as ``atan2(w, h)`` (π/2 for h = 0), with 0 at w = h = 0 (safe gradient)."""
    point = (w <= 0) & (h <= 0)
    one = torch.ones_like(w)
    return torch.where(point, torch.zeros_like(w), torch.atan2(torch.where(point, one, w), h))


def _terms(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """IoU / GIoU / DIoU / CIoU of broadcast boxes ``(..., 4), (..., 4) -> (...)``."""
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    aw, ah, bw, bh = ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1
    iw = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(min=0)
    ih = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp(min=0)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    iou = _safe_div(inter, union)
    if kind == "iou":
        return iou
    cw = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)
    ch = torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    if kind == "giou":
        area_c = cw * ch
        return iou - _safe_div(area_c - union, area_c)
    rho2 = ((ax1 + ax2 - bx1 - bx2) ** 2 + (ay1 + ay2 - by1 - by2) ** 2) / 4
    diou = iou - _safe_div(rho2, cw**2 + ch**2)
    if kind == "diou":
        return diou
    point = ((aw <= 0) & (ah <= 0)) | ((bw <= 0) & (bh <= 0))
    v = (4 / math.pi**2) * (_aspect_angle(bw, bh) - _aspect_angle(aw, ah)) ** 2
    v = torch.where(point, torch.zeros_like(v), v)
    with torch.no_grad():
        alpha = _safe_div(v, 1 - iou + v)
    return diou - alpha * v


def _pairwise(boxes1: Tensor, boxes2: Tensor, kind: str) -> Tensor:
    a = _float(boxes1, "boxes1")
    b = _float(boxes2, "boxes2")
    return _terms(a[..., :, None, :], b[..., None, :, :], kind)


def _aligned(boxes1: Tensor, boxes2: Tensor, kind: str) -> Tensor:
    return _terms(_float(boxes1, "boxes1"), _float(boxes2, "boxes2"), kind)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU ``(..., N, 4), (..., M, 4) -> (..., N, M)``; 0 where both boxes have zero
    area (torchvision's 0/0 NaN replaced by the module's convention)."""
    a = _float(boxes1, "boxes1")
    b = _float(boxes2, "boxes2")
    iou = tvops.box_iou(a, b)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    empty_union = (area_a[..., :, None] <= 0) & (area_b[..., None, :] <= 0)
    return iou.masked_fill(empty_union, 0.0)


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise GIoU in [-1, 1], ``(..., N, 4), (..., M, 4) -> (..., N, M)``."""
    return _pairwise(boxes1, boxes2, "giou")


def distance_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise DIoU in [-1, 1], ``(..., N, 4), (..., M, 4) -> (..., N, M)``."""
    return _pairwise(boxes1, boxes2, "diou")


def complete_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise CIoU, ``(..., N, 4), (..., M, 4) -> (..., N, M)``."""
    return _pairwise(boxes1, boxes2, "ciou")


def aligned_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of corresponding boxes, ``(..., 4), (..., 4) -> (...)`` (broadcast)."""
    return _aligned(boxes1, boxes2, "iou")


def aligned_generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """GIoU of corresponding boxes, ``(..., 4), (..., 4) -> (...)`` (broadcast)."""
    return _aligned(boxes1, boxes2, "giou")


def aligned_distance_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """DIoU of corresponding boxes, ``(..., 4), (..., 4) -> (...)`` (broadcast)."""
    return _aligned(boxes1, boxes2, "diou")


def aligned_complete_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """CIoU of corresponding boxes, ``(..., 4), (..., 4) -> (...)`` (broadcast)."""
    return _aligned(boxes1, boxes2, "ciou")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        # An empty batch (no positives) contributes 0 but stays in the graph.
        return loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    return loss


def box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none") -> Tensor:
    """``1 - IoU`` of corresponding boxes, in [0, 1]; ``(..., 4), (..., 4) -> (...)`` or ``()``.

    Zero gradient once boxes are disjoint: prefer GIoU/DIoU/CIoU for regression from scratch.
    """
    _check_reduction(reduction)
    return _reduce(1 - _aligned(boxes1, boxes2, "iou"), reduction)


def generalized_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none") -> Tensor:
    """``1 - GIoU`` of corresponding boxes, in [0, 2]; ``(..., 4), (..., 4) -> (...)`` or ``()``."""
    _check_reduction(reduction)
    return _reduce(1 - _aligned(boxes1, boxes2, "giou"), reduction)


def distance_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none") -> Tensor:
    """``1 - DIoU`` (torchvision's, eps = 1e-7), in [0, 2]; ``(N, 4), (N, 4) -> (N,)`` or ``()``."""
    _check_reduction(reduction)
    a = _float(boxes1, "boxes1")
    b = _float(boxes2, "boxes2")
    if a.shape != b.shape:
        # torchvision's loss unbinds both sides: broadcast first so (1, 4) vs (N, 4) works.
        a, b = torch.broadcast_tensors(a, b)
    return tvops.distance_box_iou_loss(a, b, reduction=reduction)


def complete_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none") -> Tensor:
    """``1 - CIoU`` of corresponding boxes; ``(..., 4), (..., 4) -> (...)`` or ``()``."""
    _check_reduction(reduction)
    return _reduce(1 - _aligned(boxes1, boxes2, "ciou"), reduction)
