"""SuperPoint's dense descriptor hinge loss (DeTone et al. 2018, §3.4), chunked for memory.

Every cell ``a`` of image A is paired with every cell ``b`` of its warp B. The pair is
*positive* (``s = 1``) when the centre of ``a``, warped by ``H``, lies within ``threshold``
(8 px) of the centre of ``b``. With ``d = desc_a · desc_b``::

    l(a, b) = λ_d · s · max(0, m_p − d) + (1 − s) · max(0, d − m_n),   m_p = 1, m_n = 0.2

averaged over the pairs whose ``b`` lies in B's valid area. Positives are rare (about one pair
in ``Hc·Wc``), hence the weight ``λ_d = 250``.

"Within" is strict (``< threshold``): on an unwarped 8-px grid each cell is then paired with
itself only; ``≤`` would also pair it with its four neighbours at exactly 8 px.

Memory: the pair tensors are ``(B, N, N)`` with ``N = Hc·Wc`` (1200 at 240×320, so 1.44 M pairs
per image and ~6 such float tensors for the autograd graph: ~35 MB per image, ~1.1 GB for a
batch of 32). The loss is therefore computed ``chunk`` images at a time under activation
checkpointing: only the ``(chunk, N, N)`` tensors of one chunk are ever alive (recomputed in
backward), so the loss's own peak is ~35 MB × ``chunk`` whatever the batch size. All in float32,
so it is safe under bf16/fp16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from pointforge.geometry.homography import warp_points
from pointforge.tasks.keypoints.labels import CELL
from pointforge.tasks.keypoints.options import DescriptorLossConfig


def cell_centres(hc: int, wc: int, device: torch.device | None = None) -> torch.Tensor:
    """``(Hc·Wc, 2)`` pixel (x, y) centres of the 8×8 cells, row-major (cell ``(i, j)`` covers
    pixels ``8j … 8j+7``, centre ``8j + 3.5`` with integer pixel centres)."""
    ys, xs = torch.meshgrid(
        torch.arange(hc, device=device, dtype=torch.float32),
        torch.arange(wc, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2) * CELL + (CELL - 1) / 2


@torch.no_grad()
def correspondences(H: torch.Tensor, hc: int, wc: int, threshold: float = 8.0) -> torch.Tensor:
    """``(B, N, N)`` bool, ``[b, i, j]`` = cell ``i`` of A warped by ``H[b]`` (A → B pixels,
    ``(B, 3, 3)``) lands strictly within ``threshold`` px of the centre of cell ``j`` of B."""
    centres = cell_centres(hc, wc, H.device)  # (N, 2)
    warped = warp_points(centres.expand(H.shape[0], -1, -1), H.float())  # (B, N, 2)
    return torch.cdist(warped, centres.expand_as(warped)) < threshold


def _chunk_loss(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    H: torch.Tensor,
    valid_b: torch.Tensor,
    cfg: DescriptorLossConfig,
) -> torch.Tensor:
    """Summed pair loss of a chunk. ``desc_*`` ``(c, D, Hc, Wc)``, ``valid_b`` ``(c, N)``."""
    hc, wc = desc_a.shape[-2:]
    # Autocast off: a bf16 dot product of unit vectors is off by ~1e-2, the scale of the
    # margins; the inputs are float32 already.
    with torch.autocast(desc_a.device.type, enabled=False):
        pos = correspondences(H, hc, wc, cfg.threshold)  # (c, N, N)
        dot = torch.bmm(desc_a.flatten(2).transpose(1, 2), desc_b.flatten(2))  # (c, N, N)
        loss = torch.where(
            pos,
            cfg.lambda_d * F.relu(cfg.positive_margin - dot),
            F.relu(dot - cfg.negative_margin),
        )
        return (loss * valid_b[:, None, :]).sum()


def descriptor_loss(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    H: torch.Tensor,
    valid_cells_b: torch.Tensor | None = None,
    cfg: DescriptorLossConfig | None = None,
) -> torch.Tensor:
    """Mean hinge loss over valid cell pairs.

    ``desc_a``, ``desc_b`` ``(B, D, Hc, Wc)`` L2-normalised dense descriptors of A and B;
    ``H`` ``(B, 3, 3)`` maps A pixels to B pixels; ``valid_cells_b`` ``(B, Hc, Wc)`` bool (cells
    of B inside the warp; ``None`` = all). Returns a float32 scalar; with no valid pair an
    exact 0 that still has a graph.
    """
    cfg = cfg or DescriptorLossConfig()
    b, _, hc, wc = desc_a.shape
    if desc_b.shape != desc_a.shape:
        raise ValueError(f"descriptor shapes differ: {tuple(desc_a.shape)} vs {desc_b.shape}")
    valid = (
        torch.ones(b, hc * wc, device=desc_a.device)
        if valid_cells_b is None
        else valid_cells_b.reshape(b, -1).float()
    )
    desc_a, desc_b, H = desc_a.float(), desc_b.float(), H.float()
    total = desc_a.new_zeros(())
    step = max(int(cfg.chunk), 1)
    for s in range(0, b, step):
        sl = slice(s, s + step)
        args = (desc_a[sl], desc_b[sl], H[sl], valid[sl], cfg)
        if torch.is_grad_enabled() and (desc_a.requires_grad or desc_b.requires_grad):
            total = total + checkpoint(_chunk_loss, *args, use_reentrant=False)
        else:
            total = total + _chunk_loss(*args)
    pairs = valid.sum() * (hc * wc)
    return total / pairs.clamp_min(1.0)
