"""CenterNet decoding: heatmap peaks → top-K boxes, on the device, batched over images.

Why no NMS: CenterNet (Zhou et al. 2019, §4) keeps a cell only if it is the maximum of its
3×3 neighbourhood ("which can be efficiently implemented using a 3×3 max pooling"), then
takes the K = 100 highest peaks over all classes and positions. Each peak at cell (x, y)
with offset (δx, δy) and size (w, h) gives the box
``((x + δx - w/2)·R, (y + δy - h/2)·R, (x + δx + w/2)·R, (y + δy + h/2)·R)`` in input pixels.

Flip test (paper §5.1, "flip augmentation"): the network also sees the horizontally flipped
image; its heatmap and size maps are flipped back and averaged with the original ones before
decoding. The offset map is taken from the original image only: a flipped offset refers to
the mirrored cell and would need re-indexing, and the released code averages only the
heatmap and size too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pointforge.tasks.detection.model import OUTPUT_STRIDE

DEFAULT_TOPK = 100  # paper §4: "we use the top 100 peaks"


def peak_mask(heat: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Keep the local maxima of ``heat (B, C, h, w)``: other cells set to 0 (same shape)."""
    hmax = F.max_pool2d(heat, kernel, stride=1, padding=kernel // 2)
    return heat * (hmax == heat).to(heat.dtype)


def decode(
    heat: torch.Tensor,
    wh: torch.Tensor,
    offset: torch.Tensor,
    k: int = DEFAULT_TOPK,
    stride: int = OUTPUT_STRIDE,
) -> dict[str, torch.Tensor]:
    """Top-``k`` detections per image from dense maps.

    ``heat`` ``(B, C, h, w)`` probabilities (already sigmoid-ed), ``wh`` and ``offset``
    ``(B, 2, h, w)`` in output cells. Returns ``boxes (B, K, 4)`` xyxy float32 input pixels,
    ``scores (B, K)`` float32 (descending), ``labels (B, K)`` int64 class indices, with
    K = min(k, C·h·w). Nothing is thresholded: the evaluator or predictor does that.
    """
    heat, wh, offset = heat.float(), wh.float(), offset.float()
    b, c, h, w = heat.shape
    kk = min(int(k), c * h * w)
    scores, flat = peak_mask(heat).reshape(b, -1).topk(kk, dim=1)
    labels = torch.div(flat, h * w, rounding_mode="floor")
    cell = flat - labels * (h * w)
    ys = torch.div(cell, w, rounding_mode="floor").float()
    xs = (cell % w).float()
    size = wh.reshape(b, 2, -1).gather(2, cell[:, None, :].expand(b, 2, kk))  # (B, 2, K)
    off = offset.reshape(b, 2, -1).gather(2, cell[:, None, :].expand(b, 2, kk))
    cx, cy = xs + off[:, 0], ys + off[:, 1]
    half_w, half_h = size[:, 0] / 2, size[:, 1] / 2
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=2) * stride
    return {"boxes": boxes, "scores": scores, "labels": labels}


def merge_flip(
    outputs: dict[str, torch.Tensor], flipped: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average the maps of an image and of its horizontal flip → ``(heat, wh, offset)``.

    ``outputs``/``flipped``: model outputs (heatmap logits) for the image and its flip, each
    ``(B, ·, h, w)``. Returns sigmoid heat and wh averaged over both (the flipped ones are
    mirrored back along W), and the original offset; see the module docstring.
    """
    heat = (outputs["heatmap"].float().sigmoid() + flipped["heatmap"].float().sigmoid().flip(3)) / 2
    wh = (outputs["wh"].float() + flipped["wh"].float().flip(3)) / 2
    return heat, wh, outputs["offset"].float()


@torch.no_grad()
def detect(
    model: nn.Module, images: torch.Tensor, k: int = DEFAULT_TOPK, flip_test: bool = False
) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``images (B, 3, H, W)`` in [0, 1] and decode top-``k`` detections.

    With ``flip_test`` the batch and its mirror image go through the network as one batch of
    2B. Returns :func:`decode`'s dict (boxes in input pixels).
    """
    stride = int(getattr(model, "stride", OUTPUT_STRIDE))
    if flip_test:
        both = model(torch.cat([images, images.flip(3)]))
        b = images.shape[0]
        heat, wh, offset = merge_flip(
            {n: v[:b] for n, v in both.items()}, {n: v[b:] for n, v in both.items()}
        )
    else:
        out = model(images)
        heat, wh, offset = out["heatmap"].float().sigmoid(), out["wh"], out["offset"]
    return decode(heat, wh, offset, k=k, stride=stride)


def boxes_to_original(
    boxes: torch.Tensor,
    scale: torch.Tensor | Sequence[Sequence[float]],
    original_size: torch.Tensor | Sequence[Sequence[int]],
) -> torch.Tensor:
    """Map boxes from network-input pixels back to each original image, clipped to it.

    ``boxes`` ``(B, K, 4)`` xyxy; ``scale`` ``(B, 2)`` = (sx, sy) with
    ``input_px = original_px · s`` (the resize factors of preprocessing; padding on the
    right/bottom needs no shift); ``original_size`` ``(B, 2)`` = (H, W) of the originals.
    Returns float32 ``(B, K, 4)`` on the boxes' device.
    """
    s = torch.as_tensor(scale, dtype=torch.float32, device=boxes.device).reshape(-1, 1, 2)
    size = torch.as_tensor(original_size, dtype=torch.float32, device=boxes.device).reshape(-1, 2)
    if s.shape[0] != boxes.shape[0] or size.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"boxes_to_original: {boxes.shape[0]} images but {s.shape[0]} scales and "
            f"{size.shape[0]} sizes"
        )
    out = boxes.float() / s.repeat(1, 1, 2)
    w, h = size[:, 1].reshape(-1, 1), size[:, 0].reshape(-1, 1)
    x = torch.minimum(out[..., 0::2].clamp(min=0), w[..., None])
    y = torch.minimum(out[..., 1::2].clamp(min=0), h[..., None])
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)
