"""BoT losses: label-smoothed identity cross-entropy and batch-hard triplet loss.

Both are computed in float32 whatever the autocast dtype: the triplet loss subtracts
distances of similar size and the softmax over thousands of identities loses precision in
half precision.

- Cross-entropy with label smoothing (Szegedy et al. 2016; BoT, Luo et al. 2019, eq. 2):
  target ``1 - ε + ε/N`` for the true identity and ``ε/N`` elsewhere, ``ε = 0.1`` (BoT). This
  is exactly ``torch.nn.functional.cross_entropy(label_smoothing=ε)``.
- Batch-hard triplet (Hermans et al. 2017): for every anchor the farthest positive and the
  nearest negative in the batch, Euclidean distance; hinge ``max(0, d_ap - d_an + m)`` with
  ``m = 0.3`` (BoT), or the soft-margin variant ``log(1 + exp(d_ap - d_an))`` (Hermans et al.,
  §3.1 "soft-margin").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LABEL_SMOOTHING = 0.1  # BoT (Luo et al. 2019), §3.4
TRIPLET_MARGIN = 0.3  # BoT (Luo et al. 2019), §4.1
_EPS = 1e-12  # keeps sqrt differentiable at d = 0 (an anchor against itself)


def cross_entropy_label_smooth(
    logits: torch.Tensor, targets: torch.Tensor, epsilon: float = LABEL_SMOOTHING
) -> torch.Tensor:
    """``logits (B, N)``, ``targets (B,)`` int64 in ``[0, N)`` → scalar float32 loss."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=epsilon)


def euclidean_distances(x: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` → ``(B, B)`` float32 Euclidean distances ``‖x_i - x_j‖``."""
    x = x.float()
    sq = (x * x).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
    return d2.clamp(min=_EPS).sqrt()


def batch_hard_triplet(
    features: torch.Tensor,
    pids: torch.Tensor,
    margin: float = TRIPLET_MARGIN,
    soft_margin: bool = False,
    normalize: bool = False,
) -> torch.Tensor:
    """Batch-hard triplet loss, averaged over anchors: ``features (B, D)``, ``pids (B,)``.

    ``normalize`` L2-normalises the features first (BoT does not). Anchors without another
    image of their identity or without a negative in the batch are left out of the mean (a
    P×K batch with K >= 2 and P >= 2 has none); if no anchor is usable the loss is 0 (still
    connected to the graph so backward works).
    """
    x = features.float()
    if normalize:
        x = F.normalize(x, dim=1)
    dist = euclidean_distances(x)
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    positive = same & ~eye
    negative = ~same
    d_ap = dist.masked_fill(~positive, float("-inf")).max(dim=1).values
    d_an = dist.masked_fill(~negative, float("inf")).min(dim=1).values
    usable = positive.any(dim=1) & negative.any(dim=1)
    if not bool(usable.any()):
        return x.sum() * 0.0
    diff = d_ap[usable] - d_an[usable]
    if soft_margin:
        return F.softplus(diff).mean()
    return F.relu(diff + margin).mean()
