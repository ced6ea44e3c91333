"""CenterNet training targets: Gaussian centre heatmaps, sizes, offsets at output stride 4.

Why: CenterNet (Zhou et al. 2019, §3) regresses each object as the peak of a class heatmap.
The ground truth for class c is ``Y = max_k exp(-((x - p̃x)² + (y - p̃y)²) / (2σ_k²))`` over
the objects k of that class, centred on the low-resolution centre ``p̃ = ⌊p / R⌋`` (R = 4),
with an object-size-adaptive σ; the focal loss then penalises negatives near a peak less.
The size ``(w, h)`` and the sub-cell offset ``p / R - p̃`` are supervised only at the peak cell,
so they are stored as a padded list of M objects per image (``indices`` into the flattened
``h × w`` map, a ``mask`` marking real entries).

Shapes: input boxes ``(K_i, 4)`` xyxy in input pixels, labels ``(K_i,)`` int64 in 0..C-1 per
image; output ``heatmap (B, C, H/4, W/4)``, ``indices (B, M)`` int64, ``wh (B, M, 2)`` and
``offset (B, M, 2)`` in output cells (float32), ``mask (B, M)`` float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

RADIUS_MODES = ("released", "exact")


@dataclass(frozen=True)
class TargetParams:
    """How targets are drawn (config keys of the CenterNet task options)."""

    # Output stride R of the network (pointforge/tasks/detection/model.py: OUTPUT_STRIDE).
    stride: int = 4
    # Padded number of objects per image; 128 is the paper code's max_objs for COCO (no COCO
    # image has more than 93 annotations). An image with more raises an error.
    max_objects: int = 128
    # IoU that a box whose corners are off by the radius must still reach (CornerNet §3.2,
    # reused by CenterNet §3: "object size-adaptive standard deviation").
    min_overlap: float = 0.7
    # "released": the radius of the CornerNet/CenterNet released code, with which the paper's
    # figures were trained (wider Gaussians, see gaussian_radius); "exact": the geometric
    # solution of the three cases.
    radius_mode: str = field(default="released", metadata={"choices": RADIUS_MODES})

    def __post_init__(self) -> None:
        if self.radius_mode not in RADIUS_MODES:
            raise ValueError(f"radius_mode must be one of {RADIUS_MODES}, got {self.radius_mode!r}")
        if not 0.0 < self.min_overlap < 1.0:
            raise ValueError(f"min_overlap must be in (0, 1), got {self.min_overlap}")
        if self.stride < 1 or self.max_objects < 1:
            raise ValueError(
                f"stride and max_objects must be >= 1, got {self.stride}, {self.max_objects}"
            )


def gaussian_radius(
    height: torch.Tensor, width: torch.Tensor, min_overlap: float = 0.7, mode: str = "released"
) -> torch.Tensor:
    """Radius r such that corners displaced by up to r keep IoU >= ``min_overlap`` (o).

    Derivation (CornerNet §3.2; boxes h × w, each corner moved by r in x and y):

    A. One corner inside, one outside (the box translated by (r, r)): the intersection is
       (w - r)(h - r) and the union 2wh - (w - r)(h - r). IoU = o gives
       ``r² - (w + h) r + wh (1 - o)/(1 + o) = 0``; the displacement is the smaller root
       ``r_A = ((w + h) - sqrt((w + h)² - 4wh (1 - o)/(1 + o))) / 2``.
    B. Both corners inside (box shrunk by r on every side): IoU = (w - 2r)(h - 2r) / wh = o
       gives ``4r² - 2(w + h) r + (1 - o) wh = 0``, smaller root
       ``r_B = (2(w + h) - sqrt(4(w + h)² - 16(1 - o) wh)) / 8``.
    C. Both corners outside (box grown by r on every side): IoU = wh / ((w + 2r)(h + 2r)) = o
       gives ``4o r² + 2o(w + h) r - (1 - o) wh = 0``, positive root
       ``r_C = (-2o(w + h) + sqrt(4o²(w + h)² + 16o(1 - o) wh)) / (8o)``.

    ``mode="exact"`` returns ``min(r_A, r_B, r_C)``: within that radius every case keeps the
    IoU at least o. ``mode="released"`` reproduces the radius of the released
    CornerNet/CenterNet code, with which the paper's results were trained: it takes the
    *larger* root of A and B and divides all three numerators by 2 instead of 2a, i.e.
    ``min(((w+h) + sqrt(D_A))/2, (2(w+h) + sqrt(D_B))/2, 4o·r_C)``; the minimum is then
    almost always 4o·r_C = 2.8 r_C, so its Gaussians are about 3× wider than the exact ones:
    for an s × s box σ ≈ 0.09 s (released) vs 0.03 s (exact); TTFNet (Liu et al. 2019) tuned
    σ = 0.54 s / 6 = 0.09 s independently, which supports the released width as the default.

    Example, a 100 × 100 box, o = 0.7: r_A = 9.25, r_B = 8.17, r_C = 9.76, so exact = 8.17;
    released = 27.33.
    ``height``, ``width``: any shape, same units as the result (output cells in CenterNet).
    """
    if mode not in RADIUS_MODES:
        raise ValueError(f"radius mode must be one of {RADIUS_MODES}, got {mode!r}")
    h = torch.as_tensor(height, dtype=torch.float64)
    w = torch.as_tensor(width, dtype=torch.float64)
    o = float(min_overlap)
    s, area = h + w, h * w
    sq_a = torch.sqrt((s * s - 4 * area * (1 - o) / (1 + o)).clamp(min=0))
    sq_b = torch.sqrt((4 * s * s - 16 * (1 - o) * area).clamp(min=0))
    sq_c = torch.sqrt(4 * o * o * s * s + 16 * o * (1 - o) * area)
    if mode == "exact":
        r_a, r_b, r_c = (s - sq_a) / 2, (2 * s - sq_b) / 8, (sq_c - 2 * o * s) / (8 * o)
    else:
        r_a, r_b, r_c = (s + sq_a) / 2, (2 * s + sq_b) / 2, (sq_c - 2 * o * s) / 2
    return torch.minimum(torch.minimum(r_a, r_b), r_c).to(torch.float32)


def gaussian_sigma(radius: torch.Tensor) -> torch.Tensor:
    """σ of the drawn Gaussian: the window of diameter 2r + 1 spans ±3σ (σ = (2r + 1) / 6)."""
    return (2 * radius.to(torch.float32) + 1) / 6


def draw_gaussian_(heatmap: torch.Tensor, center: tuple[int, int], radius: int) -> torch.Tensor:
    """Draw one Gaussian peak (value 1 at ``center``) into ``heatmap (h, w)`` with element-wise max.

    ``center`` is the integer cell ``(x, y)``; the Gaussian is truncated to the
    ``(2r + 1)²`` window and to the map. Modifies and returns ``heatmap``. The batch builder
    :func:`build_targets` draws all objects at once with the same formula.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    cx, cy = int(center[0]), int(center[1])
    hh, ww = heatmap.shape
    sigma = (2 * radius + 1) / 6
    x0, x1 = max(0, cx - radius), min(ww, cx + radius + 1)
    y0, y1 = max(0, cy - radius), min(hh, cy + radius + 1)
    if x0 >= x1 or y0 >= y1:
        return heatmap
    dx = torch.arange(x0, x1, dtype=torch.float32, device=heatmap.device) - cx
    dy = torch.arange(y0, y1, dtype=torch.float32, device=heatmap.device) - cy
    g = torch.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma * sigma))
    region = heatmap[y0:y1, x0:x1]
    torch.maximum(region, g.to(heatmap.dtype), out=region)
    return heatmap


def _check_image(i: int, boxes: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    """Reject malformed annotations of batch image ``i`` with a message naming it."""
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"image {i} of the batch: boxes must be (K, 4), got {tuple(boxes.shape)}")
    if labels.shape != (boxes.shape[0],):
        raise ValueError(
            f"image {i} of the batch: labels {tuple(labels.shape)} do not match "
            f"boxes {tuple(boxes.shape)}"
        )
    if boxes.numel() == 0:
        return
    if not torch.isfinite(boxes).all():
        raise ValueError(f"image {i} of the batch: boxes contain NaN/inf: {boxes.tolist()}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        j = int(bad.nonzero()[0])
        raise ValueError(
            f"image {i} of the batch, box {j}: x2 < x1 or y2 < y1: {boxes[j].tolist()}"
        )
    out = (labels < 0) | (labels >= num_classes)
    if out.any():
        j = int(out.nonzero()[0])
        raise ValueError(
            f"image {i} of the batch, box {j}: label {int(labels[j])} outside 0..{num_classes - 1}"
        )


def build_targets(
    boxes: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    num_classes: int,
    image_size: tuple[int, int],
    params: TargetParams | None = None,
) -> dict[str, torch.Tensor]:
    """Targets of a batch, on the device of the boxes.

    ``boxes[i]`` ``(K_i, 4)`` xyxy input pixels, ``labels[i]`` ``(K_i,)``; ``image_size`` is
    the network input ``(H, W)``. Boxes are clipped to the image first; a box that has no
    area left after clipping (width or height 0 at output resolution) cannot have a centre
    and is left out of the targets; ``ignored (B,)`` counts them per image so the caller can
    log them. Returns ``heatmap (B, C, H/R, W/R)``, ``indices (B, M)``, ``wh (B, M, 2)``,
    ``offset (B, M, 2)``, ``mask (B, M)``, ``ignored (B,)``.
    """
    p = params or TargetParams()
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} box tensors but {len(labels)} label tensors")
    height, width = int(image_size[0]), int(image_size[1])
    if height % p.stride or width % p.stride:
        raise ValueError(f"image size {height}×{width} is not a multiple of stride {p.stride}")
    hs, ws = height // p.stride, width // p.stride
    nb, m = len(boxes), p.max_objects
    device = boxes[0].device if nb else torch.device("cpu")
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        _check_image(i, b, lab, num_classes)

    heatmap = torch.zeros(nb, num_classes, hs, ws, device=device)
    indices = torch.zeros(nb, m, dtype=torch.int64, device=device)
    wh = torch.zeros(nb, m, 2, device=device)
    offset = torch.zeros(nb, m, 2, device=device)
    mask = torch.zeros(nb, m, device=device)
    ignored = torch.zeros(nb, dtype=torch.int64, device=device)
    if nb == 0 or sum(int(b.shape[0]) for b in boxes) == 0:
        return dict(
            heatmap=heatmap, indices=indices, wh=wh, offset=offset, mask=mask, ignored=ignored
        )

    all_boxes = torch.cat([b.to(device, torch.float32) for b in boxes])
    all_labels = torch.cat([lab.to(device, torch.int64) for lab in labels])
    image = torch.repeat_interleave(
        torch.arange(nb, device=device),
        torch.tensor([b.shape[0] for b in boxes], device=device),
    )
    limit = torch.tensor([width, height, width, height], device=device, dtype=torch.float32)
    clipped = torch.minimum(all_boxes.clamp(min=0), limit) / p.stride
    box_w = clipped[:, 2] - clipped[:, 0]
    box_h = clipped[:, 3] - clipped[:, 1]
    keep = (box_w > 0) & (box_h > 0)
    ignored.index_add_(0, image[~keep], torch.ones_like(image[~keep]))
    clipped, box_w, box_h = clipped[keep], box_w[keep], box_h[keep]
    image, cls = image[keep], all_labels[keep]
    if image.numel() == 0:
        return dict(
            heatmap=heatmap, indices=indices, wh=wh, offset=offset, mask=mask, ignored=ignored
        )

    # Slot of each kept object within its image: 0, 1, ... (objects are grouped by image).
    counts = torch.bincount(image, minlength=nb)
    if int(counts.max()) > m:
        i = int(counts.argmax())
        raise ValueError(
            f"image {i} of the batch has {int(counts[i])} objects, more than max_objects={m}; "
            "raise max_objects"
        )
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(image.numel(), device=device) - starts[image]

    centre = torch.stack(
        [(clipped[:, 0] + clipped[:, 2]) / 2, (clipped[:, 1] + clipped[:, 3]) / 2], 1
    )
    cell = centre.floor()
    cell[:, 0].clamp_(0, ws - 1)
    cell[:, 1].clamp_(0, hs - 1)
    cell_i = cell.to(torch.int64)
    indices[image, slot] = cell_i[:, 1] * ws + cell_i[:, 0]
    wh[image, slot] = torch.stack([box_w, box_h], 1)
    offset[image, slot] = centre - cell
    mask[image, slot] = 1.0

    radius = gaussian_radius(box_h, box_w, p.min_overlap, p.radius_mode).floor().clamp(min=0)
    _draw_all_(heatmap, image, cls, cell_i, radius.to(torch.int64))
    return dict(heatmap=heatmap, indices=indices, wh=wh, offset=offset, mask=mask, ignored=ignored)


def _draw_all_(
    heatmap: torch.Tensor,
    image: torch.Tensor,
    cls: torch.Tensor,
    cell: torch.Tensor,
    radius: torch.Tensor,
) -> None:
    """Draw every object's Gaussian into ``heatmap (B, C, h, w)`` with element-wise max.

    Objects with the same radius share one window size, so each radius group is one
    vectorised ``scatter_reduce(amax)`` of its ``(N_r, 2r + 1, 2r + 1)`` window values.
    """
    nc, hs, ws = heatmap.shape[1:]
    flat = heatmap.view(-1)
    for r in torch.unique(radius).tolist():
        sel = radius == r
        sigma = (2 * r + 1) / 6
        d = torch.arange(-r, r + 1, device=heatmap.device)
        g = torch.exp(-(d[:, None] ** 2 + d[None, :] ** 2).float() / (2 * sigma * sigma))
        xs = cell[sel, 0, None, None] + d[None, None, :]  # (N, 1, D)
        ys = cell[sel, 1, None, None] + d[None, :, None]  # (N, D, 1)
        inside = (xs >= 0) & (xs < ws) & (ys >= 0) & (ys < hs)  # (N, D, D)
        base = (image[sel] * nc + cls[sel]) * hs * ws  # (N,)
        idx = base[:, None, None] + ys.clamp(0, hs - 1) * ws + xs.clamp(0, ws - 1)
        vals = g.expand_as(idx)
        flat.scatter_reduce_(0, idx[inside], vals[inside], reduce="amax")
