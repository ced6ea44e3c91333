"""Batched homography sampling and warping in torch (docs/keypoints.md amplitudes).

Convention: pixel centres are at integer coordinates; ``H`` maps a SOURCE pixel ``(x, y, 1)``
to its WARPED position. A warped image is ``I'(p) = I(H⁻¹ p)``, sampled with ``grid_sample``
(``align_corners=True`` matches the integer-centre convention). Everything is batched over
``B`` so homographic adaptation can warp one image under 100 homographies in one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class HomographyConfig:
    """Homographic augmentation parameters.

    Defaults from docs/keypoints.md (the public SuperPoint configs): scaling and perspective
    amplitude 0.2, patch ratio 0.8–0.85, rotation up to ±π/2, translation, 3-px valid margin.
    """

    enabled: bool = True
    translation: bool = True
    rotation: bool = True
    scaling: bool = True
    perspective: bool = True
    scaling_amplitude: float = 0.2
    perspective_amplitude_x: float = 0.2
    perspective_amplitude_y: float = 0.2
    patch_ratio: float = 0.85
    max_angle: float = math.pi / 2
    # False: reject candidate transforms whose patch leaves the source image (no black borders).
    allow_artifacts: bool = True
    valid_border_margin: int = 3
    # Candidates per sample when artifacts are not allowed (first valid one is used).
    num_candidates: int = 25


def _trunc_normal(
    shape: tuple[int, ...], mean: float, std: float, generator, device, dtype
) -> torch.Tensor:
    """Normal clipped at ±2σ (resampling-free: clamp is enough for augmentation amplitudes)."""
    x = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    return mean + std * x.clamp(-2.0, 2.0)


def _uniform(shape: tuple[int, ...], lo, hi, generator, device, dtype) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=generator, device=device, dtype=dtype)


def homography_from_points(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Exact 4-point homographies: ``(B, 4, 2)`` → ``(B, 3, 3)`` with ``H src = dst``."""
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=-1)
    a = torch.cat([rows_u, rows_v], dim=1)  # (B, 8, 8)
    b = torch.cat([u, v], dim=1)  # (B, 8)
    h = torch.linalg.solve(a.double(), b.double()).to(src.dtype)
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=1).reshape(-1, 3, 3)


def sample_homography(
    batch: int,
    height: int,
    width: int,
    cfg: HomographyConfig,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(B, 3, 3)`` random homographies in pixel coordinates (source → warped).

    A patch (``patch_ratio`` of the image, centred) is perturbed in normalised [0, 1]
    coordinates by perspective, scale, translation and rotation, and ``H`` maps that patch
    onto the full image: the warped image shows the patch's content.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = generator
    kw: dict[str, Any] = {"device": dev, "dtype": dtype}
    p = cfg.patch_ratio
    m = (1 - p) / 2
    base = torch.tensor([[0, 0], [0, p], [p, p], [p, 0]], **kw) + m  # (4, 2) x, y
    pts = base.expand(batch, 4, 2).clone()
    if cfg.perspective:
        amp_x = min(cfg.perspective_amplitude_x, m)
        amp_y = min(cfg.perspective_amplitude_y, m)
        dy = _trunc_normal((batch,), 0.0, amp_y / 2, g, **kw)
        dxl = _trunc_normal((batch,), 0.0, amp_x / 2, g, **kw)
        dxr = _trunc_normal((batch,), 0.0, amp_x / 2, g, **kw)
        pts[:, :, 0] += torch.stack([dxl, dxl, dxr, dxr], dim=1)
        pts[:, :, 1] += torch.stack([dy, -dy, dy, -dy], dim=1)
    n = 1 if cfg.allow_artifacts else max(cfg.num_candidates, 1)
    cand = pts[:, None].expand(batch, n, 4, 2).clone()  # (B, n, 4, 2)
    if cfg.scaling:
        s = _trunc_normal((batch, n), 1.0, cfg.scaling_amplitude / 2, g, **kw)
        centre = cand.mean(dim=2, keepdim=True)
        cand = (cand - centre) * s[..., None, None] + centre
    if cfg.rotation:
        a = _uniform((batch, n), -cfg.max_angle, cfg.max_angle, g, **kw)
        c, sn = torch.cos(a), torch.sin(a)
        rot = torch.stack([torch.stack([c, -sn], -1), torch.stack([sn, c], -1)], -2)  # (B,n,2,2)
        centre = cand.mean(dim=2, keepdim=True)
        cand = torch.einsum("bnij,bnkj->bnki", rot, cand - centre) + centre
    if cfg.translation:
        lo, hi = cand.amin(dim=2), cand.amax(dim=2)  # (B, n, 2)
        if cfg.allow_artifacts:
            lo, hi = lo - m, hi + m  # may translate up to the margin beyond the border
        t = _uniform((batch, n, 2), 0.0, 1.0, g, **kw) * ((1 - hi) + lo) - lo
        cand = cand + t[:, :, None]
    if n > 1:
        inside = ((cand >= 0) & (cand <= 1)).flatten(2).all(dim=2)  # (B, n)
        # First valid candidate; if none is valid fall back to the unrotated, unscaled patch.
        idx = torch.where(
            inside.any(1),
            inside.float().argmax(1),
            torch.zeros_like(inside[:, 0], dtype=torch.long),
        )
        chosen = cand[torch.arange(batch, device=dev), idx]
        pts = torch.where(inside.any(1)[:, None, None], chosen, pts)
    else:
        pts = cand[:, 0]
    corners = torch.tensor([[0, 0], [0, 1], [1, 1], [1, 0]], **kw).expand(batch, 4, 2)
    scale = torch.tensor([width - 1, height - 1], **kw)
    return homography_from_points(pts * scale, corners * scale)


def warp_points(points: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """Apply ``H`` ``(..., 3, 3)`` to points ``(..., N, 2)`` (x, y)."""
    homog = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    out = homog @ H.transpose(-1, -2)
    w = out[..., 2:]
    w = torch.where(w.abs() < 1e-12, torch.full_like(w, 1e-12), w)  # points at infinity
    return out[..., :2] / w


def _pixel_grid(height: int, width: int, device, dtype) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)  # (H*W, 2)


def warp_images(
    images: torch.Tensor,
    H: torch.Tensor,
    out_size: tuple[int, int] | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Warp ``(B, C, h, w)`` by ``(B, 3, 3)``: ``out(p) = in(H⁻¹ p)``; outside → 0."""
    b, _, h, w = images.shape
    oh, ow = out_size or (h, w)
    grid = _pixel_grid(oh, ow, images.device, torch.float32)
    src = warp_points(grid.expand(b, -1, -1), torch.linalg.inv(H.float()))  # (B, oh*ow, 2)
    norm = torch.stack(
        [2 * src[..., 0] / max(w - 1, 1) - 1, 2 * src[..., 1] / max(h - 1, 1) - 1], dim=-1
    )
    norm = norm.reshape(b, oh, ow, 2).to(images.dtype)
    return F.grid_sample(images, norm, mode=mode, padding_mode="zeros", align_corners=True)


def valid_mask(
    H: torch.Tensor,
    height: int,
    width: int,
    erode: int = 0,
    src_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``(B, 1, H, W)`` float: 1 where the warped pixel comes from inside the source image,
    eroded by ``erode`` pixels (interpolation near the border mixes in the zero padding)."""
    sh, sw = src_size or (height, width)
    ones = torch.ones(H.shape[0], 1, sh, sw, device=H.device)
    mask = warp_images(ones, H, (height, width), mode="nearest")
    if erode > 0:
        mask = 1 - F.max_pool2d(1 - mask, 2 * erode + 1, stride=1, padding=erode)
    return mask


def filter_points(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bool ``(N,)``: points ``(N, 2)`` inside the image (pixel centres 0 … size-1)."""
    x, y = points[..., 0], points[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
