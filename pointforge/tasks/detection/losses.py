"""CenterNet losses: penalty-reduced focal loss on the heatmap, L1 on size and offset.

Why (Zhou et al. 2019, §3, Eq. 1–3): the heatmap is a dense binary problem with one positive
cell per object and a sea of negatives, so it uses the focal loss of Lin et al., with
negatives near a peak down-weighted by ``(1 - Y)^β`` (the Gaussian target Y):

    L_k = -1/N Σ { (1 - p)^α log p                  if Y = 1
                 { (1 - Y)^β p^α log(1 - p)         otherwise,

α = 2, β = 4, N = number of objects (positive cells). Size and offset are L1 losses read
only at the objects' centre cells. Total: L = L_k + 0.1 L_size + 1 L_off (paper §3, λ_size =
0.1, λ_off = 1).

All losses are computed in float32 even inside ``torch.autocast``: the log of a float16
probability saturates (log(1 - p) is -inf for p > 0.9995 in half precision), and the sums
over a 128 × 128 × 80 map lose precision in half.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CenterNetLossParams:
    """Loss weights and focal exponents (config keys of the CenterNet task options)."""

    alpha: float = 2.0  # focal exponent on the prediction, paper §3 (α = 2)
    beta: float = 4.0  # exponent of the penalty reduction (1 - Y)^β, paper §3 (β = 4)
    heatmap_weight: float = 1.0  # weight of L_k, paper Eq. 4
    wh_weight: float = 0.1  # λ_size, paper §3 ("We set λ_size = 0.1")
    offset_weight: float = 1.0  # λ_off, paper §3 ("λ_off = 1")


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss, normalised by the number of positive cells.

    ``logits``, ``target``: ``(B, C, h, w)``; positives are the cells where ``target == 1``
    (the Gaussian peaks). ``log p`` and ``log(1 - p)`` come from ``logsigmoid`` on the logits,
    which is exact where ``log(sigmoid(x))`` would underflow. With no object in the batch the
    loss is the negatives' sum alone (N would be 0; the released code does the same), so an
    empty batch still pushes the heatmap down. Returns a float32 scalar.
    """
    x = logits.float()
    y = target.float()
    pos = y.eq(1).float()
    neg = 1.0 - pos
    p = torch.sigmoid(x)
    pos_term = F.logsigmoid(x) * (1 - p).pow(alpha) * pos
    neg_term = F.logsigmoid(-x) * p.pow(alpha) * (1 - y).pow(beta) * neg
    num_pos = pos.sum()
    total = -(pos_term.sum() + neg_term.sum())
    return total / num_pos.clamp(min=1.0)


def gather_at(maps: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Read ``maps (B, D, h, w)`` at flat cell ``indices (B, M)`` → ``(B, M, D)``."""
    b, d = maps.shape[:2]
    flat = maps.reshape(b, d, -1)
    return flat.gather(2, indices[:, None, :].expand(b, d, indices.shape[1])).transpose(1, 2)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the real objects' coordinates.

    ``pred``, ``target`` ``(B, M, D)``, ``mask`` ``(B, M)``. Normalised by the number of
    masked coordinates (objects × D) as in the released code, for which λ_size = 0.1 was
    tuned; 0 (with a gradient path) when there is no object.
    """
    m = mask.float()[..., None].expand_as(pred)
    err = (pred.float() - target.float()).abs() * m
    return err.sum() / m.sum().clamp(min=1.0)


def centernet_losses(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    params: CenterNetLossParams | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted CenterNet losses of a batch: ``{"loss_hm", "loss_wh", "loss_off"}``.

    ``outputs``: the model's dict (``heatmap`` logits ``(B, C, h, w)``, ``wh``, ``offset``
    ``(B, 2, h, w)``); ``targets``: :func:`~pointforge.tasks.detection.targets.build_targets`'s
    dict. Each entry is already multiplied by its weight, so the training loss is their sum.
    """
    p = params or CenterNetLossParams()
    device_type = outputs["heatmap"].device.type
    with torch.autocast(device_type=device_type, enabled=False):
        hm = focal_loss(outputs["heatmap"], targets["heatmap"], p.alpha, p.beta)
        idx, mask = targets["indices"], targets["mask"]
        wh = masked_l1(gather_at(outputs["wh"].float(), idx), targets["wh"], mask)
        off = masked_l1(gather_at(outputs["offset"].float(), idx), targets["offset"], mask)
    return {
        "loss_hm": p.heatmap_weight * hm,
        "loss_wh": p.wh_weight * wh,
        "loss_off": p.offset_weight * off,
    }
