"""Non-maximum suppression families: hard, Soft-NMS, DIoU-NMS and weighted (merge) NMS.

Every function takes ``boxes (N, 4)`` in ``(x1, y1, x2, y2)``, ``scores (N,)`` and a threshold,
runs on the boxes' device, and returns ``keep (K,)`` int64 indices into the input, sorted by
decreasing (possibly updated) score; Soft-NMS also returns the updated scores ``(K,)`` and
weighted NMS the merged boxes ``(K, 4)``. Empty input gives empty outputs.

Class awareness: each ``batched_*`` variant takes ``idxs (N,)`` (class / image ids, as in
torchvision) and boxes with different ids never act on each other. Hard and weighted NMS use
torchvision's ``batched_nms``; the others do not offset coordinates by class (that trick costs
float32 precision once ``id · max_coord`` is large) nor loop over classes in Python: the test
``idxs_i == idxs_j`` is ANDed into the pairwise suppression / decay, which is exact and runs all
classes in the same tensor ops.

How the sequential parts are vectorised:
    * DIoU-NMS resolves greedy NMS in blocks of score-sorted boxes: inside a block the greedy
      fixed point ``keep_j = alive_j and not any_{i<j}(keep_i and S_ij)`` is reached by iterating
      the whole vector (Cluster-NMS, Zheng et al., "Enhancing Geometric Factors in Model
      Learning and Inference for Object Detection and Instance Segmentation", IEEE T-CYB 2021,
      arXiv:2005.03572 — exact, converges in at most block-size iterations, usually a few); the
      block's kept boxes then suppress all later boxes in one matrix op. Memory stays
      O(block · N), each step is a tensor op on the device.
    * Soft-NMS is one pick per step (the next pick depends on every decayed score); each step
      is a handful of O(remaining) tensor ops and the boxes that fall below the score threshold
      are dropped from the working set.
    * Weighted NMS is torchvision NMS plus one vectorised cluster assignment.
"""

from __future__ import annotations

import torch
import torchvision.ops as tvops
from torch import Tensor

from pointforge.ops.iou import distance_box_iou

__all__ = [
    "batched_diou_nms",
    "batched_nms",
    "batched_soft_nms",
    "batched_weighted_nms",
    "diou_nms",
    "nms",
    "soft_nms",
    "weighted_nms",
]

SOFT_NMS_METHODS = ("linear", "gaussian")
# Boxes per block of the blocked greedy resolution and pairs per criterion call: bound the
# (rows, cols) temporaries of the DIoU computation to a few MiB each.
_BLOCK = 256
_MAX_PAIRS = 1 << 20


def _check(boxes: Tensor, scores: Tensor, idxs: Tensor | None = None) -> Tensor:
    """Validate shapes/devices; return float boxes."""
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (N, 4), got {tuple(boxes.shape)}")
    n = boxes.shape[0]
    if scores.shape != (n,):
        raise ValueError(f"scores: expected shape ({n},) to match boxes, got {tuple(scores.shape)}")
    if idxs is not None and idxs.shape != (n,):
        raise ValueError(f"idxs: expected shape ({n},) to match boxes, got {tuple(idxs.shape)}")
    for name, t in (("scores", scores), ("idxs", idxs)):
        if t is not None and t.device != boxes.device:
            raise ValueError(f"{name} is on {t.device}, boxes on {boxes.device}")
    return boxes if boxes.is_floating_point() else boxes.float()


def _empty_keep(boxes: Tensor) -> Tensor:
    return torch.empty(0, dtype=torch.int64, device=boxes.device)


# --------------------------------------------------------------------------- hard NMS


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS (torchvision): drop every box whose IoU with a higher-scoring kept box is
    ``> iou_threshold``. ``(N, 4), (N,) -> keep (K,)`` int64, by decreasing score."""
    boxes = _check(boxes, scores)
    return tvops.nms(boxes, scores.to(boxes.dtype), iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware :func:`nms` (torchvision ``batched_nms``). ``idxs (N,)`` -> ``keep (K,)``."""
    boxes = _check(boxes, scores, idxs)
    return tvops.batched_nms(boxes, scores.to(boxes.dtype), idxs, iou_threshold)


# --------------------------------------------------------------------------- Soft-NMS


def _iou_one(box: Tensor, area: Tensor, boxes: Tensor, areas: Tensor) -> Tensor:
    """IoU of ``box (4,)`` with ``boxes (R, 4)`` -> ``(R,)``; 0 when the union is empty
    (then the intersection is 0 too, so clamping the union changes nothing else)."""
    lt = torch.maximum(box[:2], boxes[:, :2])
    rb = torch.minimum(box[2:], boxes[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = (area + areas - inter).clamp(min=torch.finfo(inter.dtype).tiny)
    return inter / union


def _soft_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor | None,
    iou_threshold: float,
    sigma: float,
    score_threshold: float,
    method: str,
) -> tuple[Tensor, Tensor]:
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"method must be one of {SOFT_NMS_METHODS}, got {method!r}")
    if method == "gaussian" and sigma <= 0:
        raise ValueError(f"sigma must be > 0 for the Gaussian decay, got {sigma}")
    boxes = _check(boxes, scores, idxs)
    s = scores.to(boxes.dtype).clone()
    # Boxes already below the threshold never enter (the paper discards detections < 0.001).
    live = s >= score_threshold
    index = torch.nonzero(live).squeeze(1)
    b, s = boxes[index], s[index]
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cls = idxs[index] if idxs is not None else None
    picks: list[Tensor] = []
    picked_scores: list[Tensor] = []
    while s.numel() > 0:
        i = torch.argmax(s)  # first maximum: ties go to the lower input index
        picks.append(index[i])
        picked_scores.append(s[i])
        iou = _iou_one(b[i], areas[i], b, areas)
        if method == "linear":
            # Bodla et al. 2017, Eq. 2: s_i (1 - IoU) when IoU >= N_t, else unchanged.
            decay = torch.where(iou >= iou_threshold, 1 - iou, torch.ones_like(iou))
        else:
            # Bodla et al. 2017, Eq. 3: s_i exp(-IoU² / sigma), applied to every box.
            decay = torch.exp(-(iou * iou) / sigma)
        if cls is not None:
            decay = torch.where(cls == cls[i], decay, torch.ones_like(decay))
        s = s * decay
        survive = s >= score_threshold
        survive[i] = False
        index, b, s, areas = index[survive], b[survive], s[survive], areas[survive]
        if cls is not None:
            cls = cls[survive]
    if not picks:
        return _empty_keep(boxes), s.new_empty(0)
    # Picks come out in non-increasing score order: decay factors are <= 1, so no remaining
    # score can exceed the one just picked.
    return torch.stack(picks), torch.stack(picked_scores)


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "linear",
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al., "Soft-NMS — Improving Object Detection With One Line of Code",
    ICCV 2017, arXiv:1704.04503): instead of dropping the neighbours of each pick, decay their
    scores and keep picking the highest remaining score.

    ``method="linear"``: ``s *= 1 - IoU`` for ``IoU >= iou_threshold``; ``"gaussian"``:
    ``s *= exp(-IoU² / sigma)`` for every box (``iou_threshold`` unused). Boxes whose score is,
    initially or after decay, below ``score_threshold`` are dropped. Defaults are the authors'
    (``sigma=0.5``, ``Nt=0.3``, ``threshold=0.001`` in their released ``soft_nms`` wrapper).

    ``(N, 4), (N,) -> keep (K,)`` int64 and ``scores (K,)`` the decayed scores at pick time,
    both by decreasing decayed score.
    """
    return _soft_nms(boxes, scores, None, iou_threshold, sigma, score_threshold, method)


def batched_soft_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "linear",
) -> tuple[Tensor, Tensor]:
    """Class-aware :func:`soft_nms`: a pick decays only boxes with the same ``idxs`` value.
    Equal to running each class alone and merging by decayed score."""
    return _soft_nms(boxes, scores, idxs, iou_threshold, sigma, score_threshold, method)


# --------------------------------------------------------------------------- DIoU-NMS


def _suppresses(rows: Tensor, cols: Tensor, threshold: float) -> Tensor:
    """``DIoU(rows_i, cols_j) > threshold`` -> ``(R, C)`` bool, columns chunked."""
    step = max(1, _MAX_PAIRS // max(1, rows.shape[0]))
    parts = [
        distance_box_iou(rows, cols[j : j + step]) > threshold
        for j in range(0, cols.shape[0], step)
    ]
    return torch.cat(parts, dim=1) if parts else rows.new_zeros((rows.shape[0], 0), dtype=bool)


def _diou_nms(boxes: Tensor, scores: Tensor, idxs: Tensor | None, iou_threshold: float) -> Tensor:
    boxes = _check(boxes, scores, idxs)
    n = boxes.shape[0]
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    cls = idxs[order] if idxs is not None else None
    kept = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    removed = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    for start in range(0, n, _BLOCK):
        end = min(start + _BLOCK, n)
        rows = b[start:end]
        sup = _suppresses(rows, rows, iou_threshold).triu_(diagonal=1)
        if cls is not None:
            sup &= cls[start:end, None] == cls[None, start:end]
        alive = ~removed[start:end]
        keep = alive
        while True:  # Cluster-NMS fixed point (see module docstring)
            new = alive & ~(keep[:, None] & sup).any(dim=0)
            if torch.equal(new, keep):
                break
            keep = new
        kept[start:end] = keep
        if end < n:
            later = _suppresses(rows[keep], b[end:], iou_threshold)
            if cls is not None:
                later &= cls[start:end][keep][:, None] == cls[None, end:]
            removed[end:] |= later.any(dim=0)
    return order[kept]


def diou_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """DIoU-NMS (Zheng et al., "Distance-IoU Loss", AAAI 2020, arXiv:1911.08287, Sec. 5):
    greedy NMS whose suppression test is ``DIoU = IoU - rho²/c² > iou_threshold``, so that
    overlapping boxes with distant centres (occluded neighbours) survive. The paper writes
    ``>=``; ``>`` keeps torchvision's convention, so that with coincident centres this is
    exactly :func:`nms`. ``(N, 4), (N,) -> keep (K,)`` int64, by decreasing score (ties: lower
    index first)."""
    return _diou_nms(boxes, scores, None, iou_threshold)


def batched_diou_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware :func:`diou_nms`: only boxes with equal ``idxs`` suppress each other."""
    return _diou_nms(boxes, scores, idxs, iou_threshold)


# --------------------------------------------------------------------------- weighted NMS


def _weighted_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor | None, iou_threshold: float
) -> tuple[Tensor, Tensor]:
    boxes = _check(boxes, scores, idxs)
    if boxes.shape[0] == 0:
        return _empty_keep(boxes), boxes.new_empty((0, 4))
    s = scores.to(boxes.dtype)
    if bool((s < 0).any()):
        raise ValueError("weighted NMS averages with the scores as weights: scores must be >= 0")
    if idxs is None:
        keep = tvops.nms(boxes, s, iou_threshold)
    else:
        keep = tvops.batched_nms(boxes, s, idxs, iou_threshold)
    k, n = keep.shape[0], boxes.shape[0]
    # Cluster of a kept box = the boxes it suppressed: each suppressed box goes to the first
    # (highest-scoring) kept box with IoU > thr, which is the one that removed it in greedy
    # order. torchvision's box_iou uses the same float formula as its nms kernel.
    owner = torch.full((n,), -1, dtype=torch.int64, device=boxes.device)
    step = max(1, _MAX_PAIRS // n)
    for r in range(0, k, step):
        rows = keep[r : r + step]
        hit = tvops.box_iou(boxes[rows], boxes) > iou_threshold
        if idxs is not None:
            hit &= idxs[rows, None] == idxs[None, :]
        first = r + hit.to(torch.uint8).argmax(dim=0)
        owner = torch.where((owner < 0) & hit.any(dim=0), first, owner)
    owner[keep] = torch.arange(k, device=boxes.device)
    member = owner >= 0
    w = s[member]
    num = boxes.new_zeros((k, 4)).index_add_(0, owner[member], boxes[member] * w[:, None])
    den = boxes.new_zeros(k).index_add_(0, owner[member], w)
    safe = den.clamp(min=torch.finfo(den.dtype).tiny)[:, None]
    merged = torch.where(den[:, None] > 0, num / safe, boxes[keep])
    return keep, merged


def weighted_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> tuple[Tensor, Tensor]:
    """Weighted (merge) NMS: the boxes kept by :func:`nms`, each replaced by the score-weighted
    mean of its cluster — itself and the boxes it suppressed (IoU ``> iou_threshold``), every
    box counted once, in the cluster of the kept box that removed it. Scores must be >= 0; a
    cluster whose scores are all 0 keeps its box. The scores are not changed (the kept box has
    its cluster's highest score). ``(N, 4), (N,) -> keep (K,)`` int64 by decreasing score and
    merged ``boxes (K, 4)``."""
    return _weighted_nms(boxes, scores, None, iou_threshold)


def batched_weighted_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float
) -> tuple[Tensor, Tensor]:
    """Class-aware :func:`weighted_nms`: clusters never mix ``idxs`` values."""
    return _weighted_nms(boxes, scores, idxs, iou_threshold)
