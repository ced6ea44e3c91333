"""Keypoint losses. The detector loss is a 65-way cross-entropy per 8×8 cell (SuperPoint §3.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def detector_loss(
    logits: torch.Tensor, labels: torch.Tensor, valid_cells: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross-entropy over valid cells.

    ``logits`` ``(B, 65, Hc, Wc)``, ``labels`` ``(B, Hc, Wc)`` int64 in [0, 64], ``valid_cells``
    ``(B, Hc, Wc)`` bool. Computed in float32 so it is safe under autocast. With no valid cell
    the loss is an exact 0 that still has a graph (so ``backward`` works), never NaN.
    """
    ce = F.cross_entropy(logits.float(), labels, reduction="none")  # (B, Hc, Wc)
    if valid_cells is None:
        return ce.mean()
    weight = valid_cells.to(ce.dtype)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)
