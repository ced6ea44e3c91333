"""Heatmap, NMS, keypoint selection and descriptor sampling: batched tensor ops on the device.

No NumPy and no Python loop over points: NMS is a max-pool comparison, selection is one
``topk`` over the flattened batch, descriptor sampling one ``grid_sample``. The only loop is
the final split into per-image results.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CELL = 8
# Multi-scale detection (docs/keypoints.md, "Multi-scale detection"): the factors the heatmap is
# fused over. 1.0 must be among them: keypoint coordinates and descriptors come from it.
SCALES_RULE = "must be distinct factors in (0, 4] that include 1.0"
# The network's arithmetic in the predictor (docs/keypoints.md, "Speed on CPU"); the heatmap,
# NMS and descriptor sampling stay float32 whichever is chosen.
PRECISIONS = ("fp32", "bf16")


def scales_valid(scales: tuple[float, ...]) -> bool:
    """Whether ``scales`` follow :data:`SCALES_RULE` (the predictor and the config check)."""
    return 1.0 in scales and all(0.0 < s <= 4.0 for s in scales) and len(set(scales)) == len(scales)


def logits_to_heatmap(logits: torch.Tensor) -> torch.Tensor:
    """``(B, 65, Hc, Wc)`` → ``(B, 8·Hc, 8·Wc)`` keypoint probability (softmax, drop dustbin)."""
    if logits.ndim != 4 or logits.shape[1] != CELL * CELL + 1:
        raise ValueError(f"logits must be (B, 65, Hc, Wc), got {tuple(logits.shape)}")
    prob = logits.softmax(dim=1)[:, :-1]
    return F.pixel_shuffle(prob, CELL)[:, 0]


def max_pool_nms(heatmap: torch.Tensor, radius: int) -> torch.Tensor:
    """Keep pixels equal to the max of their ``(2r+1)²`` window, zero the rest. ``(B, H, W)``.

    Two refinement passes follow the plain pass (as in SuperGlue's simple NMS): a pixel
    suppressed only by a maximum that is itself kept may not suppress others, so weaker
    but distinct corners just outside a kept maximum's window can come back.
    """
    if radius < 0:
        raise ValueError(f"NMS radius must be >= 0, got {radius}")
    if heatmap.ndim != 3:
        raise ValueError(f"heatmap must be (B, H, W), got {tuple(heatmap.shape)}")
    if radius == 0:
        return heatmap

    k = 2 * radius + 1

    def pool(x: torch.Tensor) -> torch.Tensor:
        # A square max is separable: a 1-D max over W, then over H, gives exactly the
        # ``k × k`` max (no rounding in a max). On CPU this is ~20x cheaper than
        # ``max_pool2d`` with a ``k × k`` window on a single-channel map, whose cost was most
        # of the predictor's post-processing at 480×640. Out-of-image cells are -inf padding.
        x = F.max_pool1d(x, k, stride=1, padding=radius)  # (B, H, W): pool along W
        return F.max_pool1d(x.transpose(1, 2), k, stride=1, padding=radius).transpose(1, 2)

    zeros = torch.zeros_like(heatmap)
    keep = heatmap == pool(heatmap)
    for _ in range(2):
        suppressed = pool(keep.to(heatmap.dtype)) > 0
        candidates = torch.where(suppressed, zeros, heatmap)
        new_keep = candidates == pool(candidates)
        keep = keep | (new_keep & ~suppressed)
    return torch.where(keep, heatmap, zeros)


def extract_keypoints(
    heatmap: torch.Tensor, threshold: float, border: int, top_k: int | None, nms_radius: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """NMS → drop a ``border``-pixel frame → threshold → top-k, per image of ``(B, H, W)``.

    Returns ``[(keypoints (N, 2) float32 (x, y), scores (N,))]`` sorted by score descending.
    """
    if heatmap.ndim != 3:
        raise ValueError(f"heatmap must be (B, H, W), got {tuple(heatmap.shape)}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be None or >= 1, got {top_k}")
    b, h, w = heatmap.shape
    nms = max_pool_nms(heatmap.float(), nms_radius)
    if border > 0:
        frame = torch.zeros_like(nms)
        frame[:, border : h - border, border : w - border] = 1
        nms = nms * frame
    k = h * w if top_k is None else min(top_k, h * w)
    scores, flat = nms.reshape(b, -1).topk(k, dim=1, sorted=True)  # (B, k)
    keep = (scores > threshold) & (scores > 0)
    xy = torch.stack([flat % w, flat // w], dim=-1).float()  # (B, k, 2)
    counts = keep.sum(dim=1).tolist()
    # Sorted descending and thresholded, so the kept entries are a prefix of each row.
    return [(xy[i, :n].contiguous(), scores[i, :n].contiguous()) for i, n in enumerate(counts)]


def refine_subpixel(heatmap: torch.Tensor, keypoints: list[torch.Tensor]) -> list[torch.Tensor]:
    """Sub-pixel keypoints: a Gaussian fitted through each peak and its 4 neighbours.

    ``heatmap`` ``(B, H, W)`` (before NMS), ``keypoints`` ``[(N_i, 2)]`` integer (x, y) pixels
    of the maxima → ``[(N_i, 2)]`` float32 with each coordinate moved by at most half a pixel.
    Per axis, a parabola through the log-probabilities at -1, 0, +1 (a Gaussian's log is a
    parabola) has its vertex at ``(l - r) / (2 (l + r - 2c))``; where the three points are not
    concave (a plateau), the pixel is kept. The network's heatmap is on the pixel grid, so
    integer keypoints carry up to ±0.5 px of quantisation error on each axis; on the held-out
    photos at 240×320 this fit lowered the mean localisation error from 1.27 to 1.14 px and
    raised viewpoint homography accuracy at 3 px from 0.48 to 0.60 (docs/keypoints.md,
    "Sub-pixel refinement"). A keypoint on the image's edge keeps its pixel on that axis.
    """
    if heatmap.ndim != 3 or len(keypoints) != heatmap.shape[0]:
        raise ValueError(
            f"heatmap must be (B, H, W) with one keypoint set per image, got "
            f"{tuple(heatmap.shape)} and {len(keypoints)} sets"
        )
    _, h, w = heatmap.shape
    out = []
    for heat, kp in zip(heatmap.float(), keypoints, strict=True):  # loop over images only
        x, y = kp[:, 0].round().long(), kp[:, 1].round().long()
        xs = torch.stack([x - 1, x, x + 1]).clamp(0, w - 1)  # (3, N)
        ys = torch.stack([y - 1, y, y + 1]).clamp(0, h - 1)
        # Only the 5 gathered values per point are logged, not the whole map.
        row = heat[y[None], xs].clamp_min(1e-12).log()  # (3, N): left, centre, right
        col = heat[ys, x[None]].clamp_min(1e-12).log()  # (3, N): above, centre, below
        # On the image's edge an axis has one neighbour: it keeps its pixel (no extrapolation).
        dx = torch.where((x > 0) & (x < w - 1), _parabola_vertex(*row), 0.0)
        dy = torch.where((y > 0) & (y < h - 1), _parabola_vertex(*col), 0.0)
        offset = torch.stack([dx, dy], dim=-1)
        out.append((kp.float() + offset).contiguous())
    return out


def _parabola_vertex(
    before: torch.Tensor, centre: torch.Tensor, after: torch.Tensor
) -> torch.Tensor:
    """Vertex offset in [-0.5, 0.5] of the parabola through (-1, before), (0, centre),
    (1, after); 0 where the three are not concave."""
    curvature = before + after - 2 * centre
    concave = curvature < 0
    shift = 0.5 * (before - after) / torch.where(concave, curvature, -torch.ones_like(curvature))
    return torch.where(concave, shift, torch.zeros_like(shift)).clamp(-0.5, 0.5)


def sample_descriptors(
    descriptors: torch.Tensor,
    keypoints: list[torch.Tensor] | torch.Tensor,
    image_size: tuple[int, int],
) -> list[torch.Tensor]:
    """Bilinear descriptors at keypoints, re-normalised. ``(B, D, Hc, Wc)`` → ``[(N_i, D)]``.

    Cell ``(i, j)``'s descriptor describes the pixel centre ``(8j + 3.5, 8i + 3.5)``; the
    coordinates are mapped to ``grid_sample``'s [-1, 1] with ``align_corners=True`` over the
    cell-centre grid so that a keypoint on a cell centre reads exactly that cell.
    ``keypoints`` may be a ragged list of ``(N_i, 2)`` (x, y) or a padded ``(B, N, 2)`` tensor.
    """
    b, d, hc, wc = descriptors.shape
    if tuple(image_size) != (CELL * hc, CELL * wc):
        # The stride-8 cell-centre convention fixes the geometry; a mismatch means the
        # keypoints and the descriptor map come from different image sizes.
        raise ValueError(
            f"image_size {tuple(image_size)} does not match descriptors {tuple(descriptors.shape)}"
            f" (expected ({CELL * hc}, {CELL * wc}))"
        )
    n_max = max((len(k) for k in keypoints), default=0)
    if n_max == 0:
        return [descriptors.new_zeros(0, d) for _ in keypoints]
    grid = descriptors.new_zeros(b, n_max, 2)
    for i, k in enumerate(keypoints):  # pad the ragged list; loop over images only
        grid[i, : len(k)] = k.to(grid.dtype)
    cx = (grid[..., 0] - (CELL - 1) / 2) / CELL  # pixel → cell-centre coordinates
    cy = (grid[..., 1] - (CELL - 1) / 2) / CELL
    norm = torch.stack([2 * cx / max(wc - 1, 1) - 1, 2 * cy / max(hc - 1, 1) - 1], dim=-1)
    sampled = F.grid_sample(
        descriptors, norm[:, None], mode="bilinear", align_corners=True, padding_mode="border"
    )[:, :, 0]  # (B, D, N)
    sampled = F.normalize(sampled, p=2, dim=1).transpose(1, 2)
    return [sampled[i, : len(k)] for i, k in enumerate(keypoints)]
