"""Ground-truth points → SuperPoint's 65-class cell labels.

Convention (shared with :func:`~pointforge.tasks.keypoints.postprocess.logits_to_heatmap`):
``F.pixel_unshuffle(x, 8)`` puts pixel ``(8i + dy, 8j + dx)`` in channel ``c = dy * 8 + dx`` of
cell ``(i, j)``; channel 64 is the dustbin ("no keypoint in this cell").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CELL = 8
DUSTBIN = CELL * CELL


def points_to_keypoint_map(points: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Rasterise ragged points ``[(K_i, 2) (x, y)]`` into a ``(B, H, W)`` float 0/1 map.

    Points are rounded to the nearest pixel centre (integer coordinates); points outside the
    image are dropped. One ``index_put_`` for the whole batch.
    """
    device = points[0].device if points else torch.device("cpu")
    kmap = torch.zeros(len(points), height, width, device=device)
    if not points:
        return kmap
    counts = torch.tensor([len(p) for p in points], device=device)
    batch_idx = torch.repeat_interleave(torch.arange(len(points), device=device), counts)
    xy = torch.cat([p.reshape(-1, 2) for p in points]).round().long()
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    b, xy = batch_idx[inside], xy[inside]
    kmap.index_put_((b, xy[:, 1], xy[:, 0]), torch.ones_like(b, dtype=kmap.dtype))
    return kmap


def keypoint_map_to_labels(
    kmap: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(B, H, W)`` 0/1 map → ``(B, H/8, W/8)`` int64 labels in [0, 64].

    A cell with several keypoints gets one of them uniformly at random: each keypoint gets a
    random score in [1, 2), the dustbin a fixed 0.5, and the argmax wins. An empty cell's
    argmax is therefore the dustbin.
    """
    b, h, w = kmap.shape
    cells = F.pixel_unshuffle(kmap[:, None].float(), CELL)  # (B, 64, H/8, W/8)
    noise = torch.rand(cells.shape, generator=generator, device=cells.device)
    scores = cells * (1.0 + noise)
    dustbin = torch.full((b, 1, h // CELL, w // CELL), 0.5, device=cells.device)
    return torch.cat([scores, dustbin], dim=1).argmax(dim=1)


def valid_mask_to_cells(mask: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` pixel validity → ``(B, H/8, W/8)`` bool, valid only if all 64 pixels are.

    Why "all": a partly invalid cell (border of a homographic warp) may hide its keypoint in
    the invalid part, so labelling it "dustbin" would teach the net to miss real corners.
    """
    cells = F.pixel_unshuffle(mask.float(), CELL)  # (B, 64, H/8, W/8)
    return cells.amin(dim=1) > 0.5
