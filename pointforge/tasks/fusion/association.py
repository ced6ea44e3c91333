"""Frustum association of radar pillars to objects, and the radar feature maps (CenterFusion §IV).

Why: a radar return has a good range and radial velocity but almost no elevation, and it is
not known which object it belongs to. CenterFusion (Nabati & Qi 2021, §IV-C/D) answers both
with geometry: each radar point is expanded into a *pillar* (a fixed-size vertical box, so a
return measured at the wrong height still overlaps its object's image), and each object gets a
*frustum*: its 2D box in the image, limited in depth to ``d̂ ± δ`` around its estimated depth,
with ``δ`` from its estimated 3D size and heading. Among the pillars whose image box overlaps
the object's 2D box and whose depth lies in that range, the **closest** one is the object's
radar point; its depth and velocity are written as extra feature maps over a box around the
object's centre, ``hm_to_box_ratio`` (0.3) of the 2D box's width and height. The secondary heads
then read image and radar features together. Training associates with the ground-truth boxes,
inference with the primary predictions (paper §IV-D, "we use the ground truth ... during
training").

Everything here is batched tensor code (no Python loop over objects or points), so training on
a CPU stays cheap: the pairwise object × point test is ``(B, M, N)`` and the map writing is
``(B, M, h, w)``.

Conventions: camera frame x right, y down, z forward (:mod:`pointforge.geometry.camera`);
radar rows follow :data:`~pointforge.tasks.fusion.data.sample.RADAR_COLUMNS`; 2D boxes are xyxy
in input pixels; maps are at output stride ``stride``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Radar columns used here (RADAR_COLUMNS: x, y, z, vx, vy, vz, rcs, v_radial, dt).
_X, _Y, _Z, _VX, _VZ = 0, 1, 2, 3, 5
# Radar feature channels written by radar_feature_maps: normalised depth, vx, vz (the velocity
# components in the camera's horizontal plane, CenterFusion's pc_dep, pc_vx, pc_vz).
RADAR_CHANNELS = ("depth", "vx", "vz")


@dataclass(frozen=True)
class AssociationParams:
    """Pillar and frustum geometry (model keys; defaults from CenterFusion's released opts)."""

    # Pillar height (m), grown upwards from the return: CenterFusion sets pillar_dims
    # [1.5, 0.2, 0.2] (h, w, l) when --pointcloud is on ("1.5 m", paper §IV-C).
    pillar_height: float = 1.5
    # Pillar width = length (m), the other two pillar_dims.
    pillar_size: float = 0.2
    # δ = (1 + frustum_expansion) × half the box's extent along the depth axis. CenterFusion's
    # get_dist_thresh computes max(z) - min(z)/2 of the rotated corners, i.e. 1.5 × the half
    # extent, with frustumExpansionRatio 0: expansion 0.5 reproduces that width.
    frustum_expansion: float = 0.5
    # Side of the written region relative to the object's 2D box (CenterFusion hm_to_box_ratio).
    hm_to_box_ratio: float = 0.3
    # Depth is written divided by this (m): CenterFusion normalize_depth with max_pc_dist; we
    # use the readers' 60 m radar range (--max_pc_dist 60 in its train scripts).
    max_depth: float = 60.0

    def __post_init__(self) -> None:
        if self.pillar_height <= 0 or self.pillar_size <= 0:
            raise ValueError("pillar_height and pillar_size must be > 0")
        if self.frustum_expansion < 0 or not 0 < self.hm_to_box_ratio <= 1:
            raise ValueError("frustum_expansion must be >= 0, hm_to_box_ratio in (0, 1]")
        if self.max_depth <= 0:
            raise ValueError("max_depth must be > 0")


def pillar_boxes(
    radar: torch.Tensor, intrinsics: torch.Tensor, params: AssociationParams
) -> torch.Tensor:
    """Image boxes of the radar pillars: ``radar (B, N, ≥6)``, ``intrinsics (B, 3, 3)`` →
    ``(B, N, 4)`` xyxy pixels of the projected pillar (``pillar_size`` wide and long, from the
    return up ``pillar_height``). Points at depth ≤ 0.1 m get an empty box (NaN)."""
    p = params
    xyz = radar[..., :3].float()
    half = p.pillar_size / 2
    dx = torch.tensor([-half, half], device=radar.device)
    dy = torch.tensor([-p.pillar_height, 0.0], device=radar.device)  # camera y is down: up = -y
    dz = torch.tensor([-half, half], device=radar.device)
    offs = torch.stack(torch.meshgrid(dx, dy, dz, indexing="ij"), -1).reshape(8, 3)
    corners = xyz[:, :, None, :] + offs  # (B, N, 8, 3)
    z = corners[..., 2].clamp(min=0.1)
    k = intrinsics.float()[:, None, None]  # (B, 1, 1, 3, 3)
    u = (k[..., 0, 0] * corners[..., 0] + k[..., 0, 2] * z) / z
    v = (k[..., 1, 1] * corners[..., 1] + k[..., 1, 2] * z) / z
    boxes = torch.stack([u.amin(2), v.amin(2), u.amax(2), v.amax(2)], -1)
    return torch.where((xyz[..., 2] > 0.1)[..., None], boxes, torch.full_like(boxes, float("nan")))


def depth_half_extent(size: torch.Tensor, rot_y: torch.Tensor) -> torch.Tensor:
    """Half the extent along the camera z axis of a level box: ``size (…, 3)`` (w, l, h),
    ``rot_y (…)`` → ``(…)``. Its length axis is (cos, 0, -sin) and its width axis (sin, 0, cos)
    (:func:`pointforge.geometry.camera.rot_y_to_matrix`), so the z extent is
    ``l |sin| + w |cos|``."""
    w, length = size[..., 0], size[..., 1]
    return 0.5 * (length * rot_y.sin().abs() + w * rot_y.cos().abs())


def associate(
    boxes2d: torch.Tensor,
    depth: torch.Tensor,
    delta: torch.Tensor,
    obj_mask: torch.Tensor,
    radar: torch.Tensor,
    radar_mask: torch.Tensor,
    pillars: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The radar point of each object: the closest pillar inside its frustum.

    ``boxes2d (B, M, 4)`` xyxy pixels, ``depth``/``delta (B, M)`` the object's depth and
    frustum half-depth, ``obj_mask (B, M)`` real objects; ``radar (B, N, C)``, ``radar_mask
    (B, N)``, ``pillars (B, N, 4)`` from :func:`pillar_boxes`. A point is in the frustum when
    its pillar box overlaps the 2D box (touching edges count, as CenterFusion reads every cell
    of the box) and ``max(0, d - δ) < z < d + δ`` (strict, as in CenterFusion). Returns
    ``index (B, M)`` int64 of the chosen point (0 where none) and ``found (B, M)`` bool.
    """
    b = boxes2d[:, :, None, :]  # (B, M, 1, 4)
    q = pillars[:, None, :, :]  # (B, 1, N, 4)
    overlap = (q[..., 0] <= b[..., 2]) & (q[..., 2] >= b[..., 0])
    overlap &= (q[..., 1] <= b[..., 3]) & (q[..., 3] >= b[..., 1])
    z = radar[..., _Z].float()[:, None, :]  # (B, 1, N)
    d, dl = depth[..., None].float(), delta[..., None].float()
    inside = overlap & (z < d + dl) & (z > (d - dl).clamp(min=0))
    inside &= radar_mask[:, None, :] & obj_mask[:, :, None]
    cost = torch.where(
        inside, z.expand_as(inside), torch.full_like(inside, torch.inf, dtype=z.dtype)
    )
    if cost.shape[-1] == 0:
        zeros = torch.zeros(boxes2d.shape[:2], dtype=torch.int64, device=boxes2d.device)
        return zeros, zeros.bool()
    best, index = cost.min(dim=2)
    return index, torch.isfinite(best)


def radar_feature_maps(
    boxes2d: torch.Tensor,
    depth: torch.Tensor,
    delta: torch.Tensor,
    obj_mask: torch.Tensor,
    radar: torch.Tensor,
    radar_mask: torch.Tensor,
    intrinsics: torch.Tensor,
    out_hw: tuple[int, int],
    stride: int,
    params: AssociationParams,
) -> torch.Tensor:
    """Radar feature maps ``(B, 3, h, w)`` (:data:`RADAR_CHANNELS`) for the objects given.

    For each object with an associated point (:func:`associate`), the cells of a box of
    ``hm_to_box_ratio`` × its 2D box, centred on the 2D box centre, get the point's depth
    (÷ ``max_depth``) and velocity (vx, vz). A cell is at output-cell coordinates ``(x, y)`` and
    covered when ``⌊(cx - r·w/2)/s⌋ ≤ x ≤ ⌊(cx + r·w/2)/s⌋`` (same for y), s the stride, as
    CenterFusion's ``int()`` bounds, inclusive. Where regions of several objects overlap, the
    nearest associated point wins (radar sees the front object). Other cells are 0.
    """
    p = params
    pillars = pillar_boxes(radar, intrinsics, p)
    index, found = associate(boxes2d, depth, delta, obj_mask, radar, radar_mask, pillars)
    bsz, m = index.shape
    h, w = out_hw
    maps = torch.zeros(bsz, len(RADAR_CHANNELS), h, w, device=boxes2d.device)
    if m == 0 or not bool(found.any()):
        return maps
    picked = radar.float().gather(1, index[..., None].expand(bsz, m, radar.shape[-1]))
    feats = torch.stack(
        [picked[..., _Z] / p.max_depth, picked[..., _VX], picked[..., _VZ]], -1
    )  # (B, M, 3)
    bx = boxes2d.float()
    cx, cy = (bx[..., 0] + bx[..., 2]) / 2, (bx[..., 1] + bx[..., 3]) / 2
    hw_, hh_ = (
        p.hm_to_box_ratio * (bx[..., 2] - bx[..., 0]) / 2,
        p.hm_to_box_ratio * (bx[..., 3] - bx[..., 1]) / 2,
    )
    x0, x1 = ((cx - hw_) / stride).floor(), ((cx + hw_) / stride).floor()
    y0, y1 = ((cy - hh_) / stride).floor(), ((cy + hh_) / stride).floor()
    xs = torch.arange(w, device=bx.device, dtype=bx.dtype)
    ys = torch.arange(h, device=bx.device, dtype=bx.dtype)
    in_x = (xs >= x0[..., None]) & (xs <= x1[..., None])  # (B, M, w)
    in_y = (ys >= y0[..., None]) & (ys <= y1[..., None])  # (B, M, h)
    cover = in_y[..., :, None] & in_x[..., None, :] & found[..., None, None]  # (B, M, h, w)
    dist = torch.where(cover, picked[..., _Z, None, None], torch.inf)
    best, owner = dist.min(dim=1)  # (B, h, w)
    values = feats.gather(1, owner.reshape(bsz, -1, 1).expand(-1, -1, 3))  # (B, h·w, 3)
    values = values.transpose(1, 2).reshape(bsz, 3, h, w)
    return torch.where(torch.isfinite(best)[:, None], values, maps)
