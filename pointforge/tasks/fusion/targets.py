"""CenterFusion training targets: CenterNet's 2D targets plus the 3D quantities at each centre.

Why: the 2D part (Gaussian heatmap at the 2D box centre, size, sub-cell offset, the padded
object slots) is exactly the detection family's
:func:`~pointforge.tasks.detection.targets.build_targets`; the 3D heads are supervised at the
same slots (CenterNet §4: every regression is read at the object's centre cell). This module
adds, per slot: depth (m), log size, (sin α, cos α) of the observation angle, the amodal
offset of the projected 3D centre from the cell, camera-frame velocity (masked where the
ground truth has none, as nuScenes' lone annotations) and the one-hot attribute (masked for
objects without one). It also pads the ground-truth boxes the fusion model associates radar
with during training.

Shapes (``M`` = ``max_objects`` slots, ``Mb`` = most boxes of an image in the batch): see
:func:`build_fusion_targets`.
"""

from __future__ import annotations

from typing import Any

import torch

from pointforge.tasks.detection.targets import TargetParams, build_targets
from pointforge.tasks.fusion.data.sample import ATTRIBUTE_NAMES


def observation_angle(rot_y: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """``α = rot_y − atan2(x, z)`` (KITTI's observation angle), wrapped to [−π, π)."""
    a = rot_y - torch.atan2(center[..., 0], center[..., 2])
    return torch.remainder(a + torch.pi, 2 * torch.pi) - torch.pi


def pad_boxes(
    boxes: list[dict[str, torch.Tensor]], device: torch.device
) -> dict[str, torch.Tensor]:
    """Per-image ground truth → padded ``box2d (B, Mb, 4)``, ``depth``, ``rot_y (B, Mb)``,
    ``size (B, Mb, 3)``, ``mask (B, Mb)`` bool: what the model's association reads."""
    mb = max([int(b["label"].shape[0]) for b in boxes] + [1])
    bsz = len(boxes)
    out = {
        "box2d": torch.zeros(bsz, mb, 4, device=device),
        "depth": torch.ones(bsz, mb, device=device),
        "rot_y": torch.zeros(bsz, mb, device=device),
        "size": torch.ones(bsz, mb, 3, device=device),
        "mask": torch.zeros(bsz, mb, dtype=torch.bool, device=device),
    }
    for i, b in enumerate(boxes):
        n = int(b["label"].shape[0])
        for k in ("box2d", "depth", "rot_y", "size"):
            out[k][i, :n] = b[k].to(device, torch.float32)
        out["mask"][i, :n] = True
    return out


def build_fusion_targets(
    boxes: list[dict[str, torch.Tensor]],
    intrinsics: torch.Tensor,
    image_size: tuple[int, int],
    num_classes: int,
    params: TargetParams | None = None,
) -> dict[str, Any]:
    """Targets of a batch.

    ``boxes``: per image a dict with ``box2d (K, 4)`` pixels (non-empty, inside the image, as
    the sample contract guarantees), ``label (K,)``, ``center (K, 3)``, ``size (K, 3)``,
    ``rot_y (K,)``, ``depth (K,)``, ``velocity (K, 3)`` (NaN = unknown), ``attribute (K,)``
    (−1 = none); ``intrinsics (B, 3, 3)``. Returns build_targets' ``heatmap (B, C, h, w)``,
    ``indices``, ``wh``, ``offset``, ``mask`` plus per slot ``depth (B, M)``, ``dim (B, M, 3)``
    (log size), ``rot (B, M, 2)``, ``amodal (B, M, 2)``, ``velocity (B, M, 3)``,
    ``vel_mask (B, M)``, ``attribute (B, M, 8)``, ``att_mask (B, M)``, and ``gt`` (padded boxes,
    :func:`pad_boxes`).
    """
    p = params or TargetParams()
    device = intrinsics.device
    for i, b in enumerate(boxes):
        bx = b["box2d"]
        if bool(((bx[:, 2] <= bx[:, 0]) | (bx[:, 3] <= bx[:, 1])).any()):
            raise ValueError(f"image {i} of the batch has an empty 2D box: {bx.tolist()}")
    t = build_targets(
        [b["box2d"].to(device, torch.float32) for b in boxes],
        [b["label"].to(device) for b in boxes],
        num_classes,
        image_size,
        p,
    )
    bsz, m = t["mask"].shape
    ws = image_size[1] // p.stride
    z = torch.zeros
    extra = {
        "depth": z(bsz, m, device=device),
        "dim": z(bsz, m, 3, device=device),
        "rot": z(bsz, m, 2, device=device),
        "amodal": z(bsz, m, 2, device=device),
        "velocity": z(bsz, m, 3, device=device),
        "vel_mask": z(bsz, m, device=device),
        "attribute": z(bsz, m, len(ATTRIBUTE_NAMES), device=device),
        "att_mask": z(bsz, m, device=device),
    }
    k = intrinsics.float()
    for i, b in enumerate(boxes):
        n = int(b["label"].shape[0])
        if n == 0:
            continue
        if int(t["mask"][i].sum()) != n:  # build_targets keeps every non-empty box in order
            raise ValueError(f"image {i}: {n} boxes but {int(t['mask'][i].sum())} target slots")
        c = b["center"].to(device, torch.float32)
        cell = t["indices"][i, :n]
        cx, cy = (cell % ws).float(), torch.div(cell, ws, rounding_mode="floor").float()
        u = k[i, 0, 0] * c[:, 0] / c[:, 2] + k[i, 0, 2]
        v = k[i, 1, 1] * c[:, 1] / c[:, 2] + k[i, 1, 2]
        alpha = observation_angle(b["rot_y"].to(device, torch.float32), c)
        vel = b["velocity"].to(device, torch.float32)
        known = torch.isfinite(vel).all(1)
        att = b["attribute"].to(device)
        extra["depth"][i, :n] = b["depth"].to(device, torch.float32)
        extra["dim"][i, :n] = b["size"].to(device, torch.float32).clamp(min=1e-3).log()
        extra["rot"][i, :n] = torch.stack([alpha.sin(), alpha.cos()], 1)
        extra["amodal"][i, :n] = torch.stack([u / p.stride - cx, v / p.stride - cy], 1)
        extra["velocity"][i, :n] = torch.where(known[:, None], vel, torch.zeros_like(vel))
        extra["vel_mask"][i, :n] = known.float()
        has = att >= 0
        onehot = torch.zeros(n, len(ATTRIBUTE_NAMES), device=device)
        onehot[has, att[has]] = 1.0
        extra["attribute"][i, :n] = onehot
        extra["att_mask"][i, :n] = has.float()
    return {**t, **extra, "gt": pad_boxes(boxes, device)}
