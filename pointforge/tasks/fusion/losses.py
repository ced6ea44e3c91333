"""CenterFusion losses: CenterNet's 2D losses plus L1 on the 3D quantities, BCE on attributes.

Why these (CenterNet §4 and CenterFusion's released options, ``src/lib/opts.py``): the 2D part
is the detection family's :func:`~pointforge.tasks.detection.losses.centernet_losses` (focal
heatmap, λ_size 0.1, λ_off 1). Depth is an L1 on the decoded depth ``1/σ(x) − 1`` in metres
(CenterNet §4); size an L1 on log(w, l, h) (our encoding, :mod:`.model`); rotation an L1 on
(sin α, cos α); amodal offset and velocity L1 (velocity only where the ground truth has one);
attributes a binary cross-entropy on the 8 logits of objects that have an attribute. The
secondary depth and rotation heads of fusion get the same losses as the primary ones.
Weights: CenterFusion's defaults are 1 for every 3D term (dep_weight, dim_weight, rot_weight,
amodel_offset_weight, velocity_weight, nuscenes_att_weight, and dep_sec/rot_sec reuse dep and
rot), 1 for the heatmap and offset and 0.1 for the 2D size.

All in float32 (outside autocast), like the 2D losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pointforge.tasks.detection.losses import (
    CenterNetLossParams,
    centernet_losses,
    gather_at,
    masked_l1,
)
from pointforge.tasks.fusion.model import inverse_sigmoid_depth


@dataclass(frozen=True)
class FusionLossParams:
    """Loss weights (``centerfusion.loss.*``); every default is CenterFusion's opts.py value."""

    heatmap_weight: float = 1.0  # hm_weight
    wh_weight: float = 0.1  # wh_weight
    offset_weight: float = 1.0  # off_weight
    depth_weight: float = 1.0  # dep_weight (also dep_sec)
    dim_weight: float = 1.0  # dim_weight
    rot_weight: float = 1.0  # rot_weight (also rot_sec)
    amodal_weight: float = 1.0  # amodel_offset_weight
    velocity_weight: float = 1.0  # velocity_weight
    attribute_weight: float = 1.0  # nuscenes_att_weight
    focal_alpha: float = 2.0  # CenterNet §3
    focal_beta: float = 4.0  # CenterNet §3


def _bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the masked objects' attribute logits ``(B, M, A)``; 0 without any."""
    m = mask.float()[..., None].expand_as(logits)
    err = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return (err * m).sum() / m.sum().clamp(min=1.0)


def fusion_losses(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    params: FusionLossParams | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted named losses of a batch (their sum is the training loss).

    ``outputs``: :class:`~pointforge.tasks.fusion.model.CenterFusion`'s maps; ``targets``:
    :func:`~pointforge.tasks.fusion.targets.build_fusion_targets`. Fusion outputs (with
    ``depth_sec``) add ``loss_depth_sec`` and ``loss_rot_sec``, and the radar-residual depth
    (``depth_fused``) adds ``loss_depth_res`` over the objects with a radar return."""
    p = params or FusionLossParams()
    two_d = CenterNetLossParams(
        p.focal_alpha, p.focal_beta, p.heatmap_weight, p.wh_weight, p.offset_weight
    )
    losses = centernet_losses(outputs, targets, two_d)
    with torch.autocast(device_type=outputs["heatmap"].device.type, enabled=False):
        idx, mask = targets["indices"], targets["mask"]

        def at(name: str) -> torch.Tensor:
            return gather_at(outputs[name].float(), idx)

        def depth_l1(name: str) -> torch.Tensor:
            pred = inverse_sigmoid_depth(at(name))
            return masked_l1(pred, targets["depth"][..., None], mask)

        losses["loss_depth"] = p.depth_weight * depth_l1("depth")
        losses["loss_dim"] = p.dim_weight * masked_l1(at("dim"), targets["dim"], mask)
        losses["loss_rot"] = p.rot_weight * masked_l1(at("rot"), targets["rot"], mask)
        losses["loss_amodal"] = p.amodal_weight * masked_l1(at("amodal"), targets["amodal"], mask)
        vmask = mask * targets["vel_mask"]
        losses["loss_velocity"] = p.velocity_weight * masked_l1(
            at("velocity"), targets["velocity"], vmask
        )
        amask = mask * targets["att_mask"]
        losses["loss_attribute"] = p.attribute_weight * _bce(
            at("attribute"), targets["attribute"], amask
        )
        if "depth_sec" in outputs:
            losses["loss_depth_sec"] = p.depth_weight * depth_l1("depth_sec")
            losses["loss_rot_sec"] = p.rot_weight * masked_l1(at("rot_sec"), targets["rot"], mask)
        if "depth_fused" in outputs:
            # Only objects whose region got a radar return; the others are depth_sec's.
            hit = (at("radar_maps")[..., 0] > 0).float()
            fused = at("depth_fused")
            losses["loss_depth_res"] = p.depth_weight * masked_l1(
                fused, targets["depth"][..., None], mask * hit
            )
    return losses
