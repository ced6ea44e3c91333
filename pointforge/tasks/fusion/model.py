"""CenterFusion: CenterNet with 3D heads, plus radar feature maps for secondary heads.

Why this shape (Nabati & Qi 2021, §IV, on CenterNet's 3D variant, Zhou et al. 2019 §4):
the detection family's CenterNet (:class:`pointforge.tasks.detection.model.CenterNet`, whose
backbone, neck and 2D heads are reused as they are) gives, at stride 4, the class heatmap, the
2D box size and the centre offset. Primary 3D heads read the same image features:

* ``depth`` (1): the paper's encoding ``d = 1/σ(x) − 1`` (CenterNet §4, after Eigen et al.);
* ``dim`` (3): **log** of (w, l, h) in metres, so one L1 weight fits pedestrians and trucks;
* ``rot`` (2): (sin α, cos α) of the observation angle ``α = rot_y − atan2(x, z)`` (what a
  crop of the image shows); chosen over CenterNet's 8-channel two-bin code because an L1 on
  the unit vector has no bin boundary to learn and is enough at nuScenes' AOE scale;
* ``amodal`` (2): projected 3D centre minus the heatmap cell, in output cells (CenterFusion's
  ``amodel_offset``: the heatmap peaks at the 2D box centre, the 3D centre projects elsewhere
  for truncated or long objects);
* ``velocity`` (3) in the camera frame (m/s) and ``attribute`` (8 logits of
  :data:`~pointforge.tasks.fusion.data.sample.ATTRIBUTE_NAMES`).

With ``radar: true`` (fusion), the radar maps of :mod:`.association` (depth, vx, vz at each
object) are concatenated to the image features and **secondary heads** read them:
``depth_sec``, ``rot_sec``, ``velocity`` and ``attribute`` (CenterFusion's secondary_heads,
each with 3 hidden 3×3 convs, its custom_head_convs). With ``radar_depth_residual: true``
(our addition, docs/fusion.md) a further secondary head ``depth_res`` regresses an offset in
metres from the associated radar return's depth to the centre and a trust weight, and
``depth_fused`` (metres, :func:`fused_depth`) blends radar depth + offset with ``depth_sec``
by that weight where the radar map has a return, ``depth_sec`` elsewhere. The maps come from
the ground-truth
boxes when ``gt`` is given (training) and from the primary predictions otherwise. With
``radar: false`` the same network has no secondary heads and velocity/attribute read the
image features: the camera-only baseline.

``forward(images (B, 3, H, W) in [0, 1], radar (B, N, 9), radar_mask (B, N), intrinsics
(B, 3, 3), gt=None)`` → dict of maps ``(B, ·, H/4, W/4)`` (plus ``radar_maps`` in fusion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from pointforge.registry import MODELS
from pointforge.tasks.detection.decode import peak_mask
from pointforge.tasks.detection.model import BACKBONE_STRIDE, CenterNet, CenterNetParams
from pointforge.tasks.fusion.association import (
    RADAR_CHANNELS,
    AssociationParams,
    depth_half_extent,
    radar_feature_maps,
)
from pointforge.tasks.fusion.data.sample import ATTRIBUTE_NAMES
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES


@dataclass(frozen=True)
class CenterFusionParams(CenterNetParams):
    """Model keys (``model.``): the CenterNet ones (``backbone_weights`` included: the
    torchvision ResNet file is fitted by the CenterNet constructor) plus fusion's."""

    # true: radar maps + secondary heads (CenterFusion); false: the camera-only baseline.
    radar: bool = True
    # Hidden 3×3 convs of each secondary head (CenterFusion custom_head_convs = 3).
    secondary_convs: int = 3
    # Inference association uses the top-K peaks (CenterFusion uses its K = 100) whose score is
    # at least assoc_min_score; CenterFusion keeps all K, we drop near-zero peaks so background
    # cells cannot paint clutter returns over real objects (0 restores the paper's rule).
    assoc_topk: int = 100
    assoc_min_score: float = 0.05
    # Where an object has a radar return, its depth is the associated radar depth + a
    # regressed offset (metres), blended with depth_sec by a learned trust (fused_depth);
    # CenterFusion's depth_sec regresses the depth itself (false). Radar hits the visible
    # faces, 0.5-3 m in front of the centre; that offset follows from the box's size and
    # heading, which the image shows, while the range itself is what the image lacks.
    radar_depth_residual: bool = False
    # true: the secondary heads read the image features without back-propagating into them,
    # so only the primary losses train the backbone, neck and primary heads (the camera-only
    # model's losses minus velocity and attributes, which fusion predicts from radar).
    # CenterFusion's --freeze_backbone freezes the backbone for every head instead.
    secondary_detach: bool = False
    association: AssociationParams = field(default_factory=AssociationParams)


# Depth heads start at 20 m (1/σ(b) − 1 = 20 for b = −ln 20), mid-range for nuScenes and the
# synthetic scenes; from the released code's 0 bias (1 m) the first L1 steps are ~25 m errors
# that swamp every other loss.
DEPTH_BIAS = -math.log(20.0)


def inverse_sigmoid_depth(x: torch.Tensor) -> torch.Tensor:
    """CenterNet's depth decoding ``1/σ(x) − 1`` (metres), ε as in its code (1e-6)."""
    return 1.0 / (x.float().sigmoid() + 1e-6) - 1.0


def _head(in_ch: int, hidden: int, out_ch: int, convs: int = 1, bias: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(in_ch if i == 0 else hidden, hidden, 3, padding=1), nn.ReLU(True)]
    last = nn.Conv2d(hidden, out_ch, 1)
    assert last.bias is not None  # Conv2d(bias=True)
    nn.init.constant_(last.bias, bias)
    return nn.Sequential(*layers, last)


def fused_depth(
    depth_sec: torch.Tensor, depth_res: torch.Tensor, radar_depth: torch.Tensor, max_depth: float
) -> torch.Tensor:
    """Secondary depth in metres ``(B, 1, h, w)``.

    ``depth_res (B, 2, h, w)`` holds an offset (m) and a trust logit; ``radar_depth (B, 1, h,
    w)`` is the radar map normalised by ``max_depth`` (0 where no return). Where the map holds
    a return the depth is ``w · (radar + offset) + (1 − w) · d_sec`` with ``w = σ(logit)``,
    elsewhere ``d_sec``, the ``depth_sec`` logits decoded by :func:`inverse_sigmoid_depth`."""
    sec = inverse_sigmoid_depth(depth_sec)
    anchored = radar_depth.float() * max_depth + depth_res[:, :1].float()
    w = depth_res[:, 1:2].float().sigmoid()
    return torch.where(radar_depth > 0, w * anchored + (1 - w) * sec, sec)


def gather_cells(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``maps (B, D, h, w)`` at flat cells ``index (B, K)`` → ``(B, K, D)``."""
    b, d = maps.shape[:2]
    flat = maps.reshape(b, d, -1)
    return flat.gather(2, index[:, None, :].expand(b, d, index.shape[1])).transpose(1, 2)


def topk_peaks(heat: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Top-``k`` 3×3 peaks of ``heat (B, C, h, w)`` probabilities: ``scores``, ``labels``,
    ``cells`` (flat h·w index) ``(B, K)``, ``xs``, ``ys`` (cell coordinates, float)."""
    b, c, h, w = heat.shape
    kk = min(int(k), c * h * w)
    scores, flat = peak_mask(heat.float()).reshape(b, -1).topk(kk, dim=1)
    labels = torch.div(flat, h * w, rounding_mode="floor")
    cells = flat - labels * h * w
    ys = torch.div(cells, w, rounding_mode="floor")
    return {"scores": scores, "labels": labels, "cells": cells, "xs": (cells % w).float(),
            "ys": ys.float()}  # fmt: skip


class CenterFusion(CenterNet):
    """See the module docstring. ``num_classes`` heatmap channels (default: the 10 nuScenes
    detection classes, so every dataset of the family shares one head layout)."""

    def __init__(self, num_classes: int, params: CenterFusionParams | None = None) -> None:
        params = params or CenterFusionParams()
        super().__init__(num_classes, params)
        self.fusion: CenterFusionParams = params
        ch, hc = params.neck_channels[-1], params.head_conv
        self.depth = _head(ch, hc, 1, bias=DEPTH_BIAS)
        self.dim = _head(ch, hc, 3)
        self.rot = _head(ch, hc, 2)
        self.amodal = _head(ch, hc, 2)
        n_att = len(ATTRIBUTE_NAMES)
        if params.radar:
            cat, sc = ch + len(RADAR_CHANNELS), params.secondary_convs
            self.depth_sec = _head(cat, hc, 1, sc, DEPTH_BIAS)
            self.rot_sec = _head(cat, hc, 2, sc)
            self.velocity = _head(cat, hc, 3, sc)
            self.attribute = _head(cat, hc, n_att, sc, -math.log(n_att - 1))
            if params.radar_depth_residual:
                self.depth_res = _head(cat, hc, 2, sc)
        else:
            self.velocity = _head(ch, hc, 3)
            self.attribute = _head(ch, hc, n_att, 1, -math.log(n_att - 1))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Stride-4 image features ``(B, C, H/4, W/4)`` of ``images (B, 3, H, W)`` in [0, 1]."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"CenterFusion expects images (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % BACKBONE_STRIDE or w % BACKBONE_STRIDE:
            raise ValueError(
                f"CenterFusion input height and width must be multiples of {BACKBONE_STRIDE}, "
                f"got {h}×{w}"
            )
        return self.neck_features((images - self.mean) / self.std)

    def forward(
        self,
        images: torch.Tensor,
        radar: torch.Tensor | None = None,
        radar_mask: torch.Tensor | None = None,
        intrinsics: torch.Tensor | None = None,
        gt: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        feats = self.features(images)
        out = {
            "heatmap": self.heatmap(feats),
            "wh": self.wh(feats),
            "offset": self.offset(feats),
            "depth": self.depth(feats),
            "dim": self.dim(feats),
            "rot": self.rot(feats),
            "amodal": self.amodal(feats),
        }
        if not self.fusion.radar:
            out["velocity"] = self.velocity(feats)
            out["attribute"] = self.attribute(feats)
            return out
        if radar is None or radar_mask is None or intrinsics is None:
            raise ValueError("a fusion CenterFusion (model.radar: true) needs radar and intrinsics")
        with torch.no_grad():
            objs = gt if gt is not None else self._predicted_objects(out, intrinsics)
            a = self.fusion.association
            delta = (1 + a.frustum_expansion) * depth_half_extent(objs["size"], objs["rot_y"])
            maps = radar_feature_maps(
                objs["box2d"], objs["depth"], delta, objs["mask"], radar, radar_mask,
                intrinsics, (int(feats.shape[-2]), int(feats.shape[-1])), self.stride, a,
            )  # fmt: skip
        image = feats.detach() if self.fusion.secondary_detach else feats
        both = torch.cat([image, maps.to(feats.dtype)], 1)
        out["radar_maps"] = maps
        out["depth_sec"] = self.depth_sec(both)
        out["rot_sec"] = self.rot_sec(both)
        out["velocity"] = self.velocity(both)
        out["attribute"] = self.attribute(both)
        if self.fusion.radar_depth_residual:
            out["depth_res"] = self.depth_res(both)
            out["depth_fused"] = fused_depth(
                out["depth_sec"], out["depth_res"], maps[:, :1], self.fusion.association.max_depth
            )
        return out

    def _predicted_objects(
        self, out: dict[str, torch.Tensor], intrinsics: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Frustum inputs from the primary heads' top-K peaks: 2D boxes (pixels), depth, size,
        heading and a mask of peaks scoring at least ``assoc_min_score``."""
        p = self.fusion
        peaks = topk_peaks(out["heatmap"].float().sigmoid(), p.assoc_topk)
        dec = decode_cells(out, peaks, intrinsics, self.stride, secondary=False)
        return {
            "box2d": dec["box2d"],
            "depth": dec["depth"],
            "size": dec["size"],
            "rot_y": dec["rot_y"],
            "mask": peaks["scores"] >= p.assoc_min_score,
        }


def decode_cells(
    out: dict[str, torch.Tensor],
    peaks: dict[str, torch.Tensor],
    intrinsics: torch.Tensor,
    stride: int,
    secondary: bool = True,
) -> dict[str, torch.Tensor]:
    """3D boxes at the ``peaks`` (:func:`topk_peaks`) in the camera frame, all ``(B, K, ·)``:
    ``box2d`` (4, pixels), ``center`` (3), ``depth``, ``size`` (3, w l h), ``rot_y``,
    ``velocity`` (3), ``attribute`` (8 probabilities). ``secondary``: use ``depth_sec`` and
    ``rot_sec`` when the outputs have them (fusion), and ``depth_fused`` (metres) rather than
    ``depth_sec`` when the outputs have it. ``velocity`` and ``attribute`` are
    returned when the outputs hold them."""
    cells = peaks["cells"]
    g = {k: gather_cells(v.float(), cells) for k, v in out.items() if k != "radar_maps"}
    xs, ys = peaks["xs"], peaks["ys"]
    cx, cy = xs + g["offset"][..., 0], ys + g["offset"][..., 1]
    half = g["wh"].clamp(min=0) / 2
    box2d = torch.stack([cx - half[..., 0], cy - half[..., 1], cx + half[..., 0],
                         cy + half[..., 1]], -1) * stride  # fmt: skip
    use_sec = secondary and "depth_sec" in g
    if use_sec and "depth_fused" in g:
        depth = g["depth_fused"][..., 0]
    else:
        depth = inverse_sigmoid_depth(g["depth_sec" if use_sec else "depth"][..., 0])
    rot = g["rot_sec" if use_sec else "rot"]
    u = (xs + g["amodal"][..., 0]) * stride
    v = (ys + g["amodal"][..., 1]) * stride
    k = intrinsics.float()
    fx, fy = k[:, 0, 0, None], k[:, 1, 1, None]
    px, py = k[:, 0, 2, None], k[:, 1, 2, None]
    center = torch.stack([(u - px) / fx * depth, (v - py) / fy * depth, depth], -1)
    alpha = torch.atan2(rot[..., 0], rot[..., 1])
    rot_y = alpha + torch.atan2(center[..., 0], center[..., 2])
    rot_y = torch.remainder(rot_y + math.pi, 2 * math.pi) - math.pi
    out_d = {
        "box2d": box2d,
        "center": center,
        "depth": depth,
        "size": g["dim"].clamp(-5, 5).exp(),
        "rot_y": rot_y,
    }
    if "velocity" in g:  # absent while fusion associates (before its secondary heads ran)
        out_d["velocity"] = g["velocity"]
        out_d["attribute"] = g["attribute"].sigmoid()
    return out_d


def build_centerfusion(num_classes: int = len(DETECTION_NAMES), **params: Any) -> CenterFusion:
    """``MODELS`` factory: ``params`` are :class:`CenterFusionParams` fields (``association``
    may be a dict of :class:`AssociationParams` fields)."""
    known = {f.name for f in fields(CenterFusionParams)}
    unknown = set(params) - known
    if unknown:
        raise TypeError(
            f"centerfusion: unknown model params {sorted(unknown)}; valid: {sorted(known)}"
        )
    if isinstance(params.get("association"), dict):
        params["association"] = AssociationParams(**params["association"])
    if "neck_channels" in params:
        params["neck_channels"] = tuple(params["neck_channels"])
    return CenterFusion(num_classes, CenterFusionParams(**params))


MODELS.register("centerfusion", params=CenterFusionParams)(build_centerfusion)
