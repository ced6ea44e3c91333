"""Non-maximum suppression families: hard, Soft-NMS, DIoU-NMS and weighted (merge) NMS.

Every function takes ``boxes (N, 4)`` in ``(x1, y1, x2, y2)``, ``scores (N,)`` and a threshold,
runs on the boxes' device, and returns ``keep (K,)`` int64 indices into the input, sorted by
decreasing (possibly updated) score; Soft-NMS also returns the updated scores ``(K,)`` and
weighted NMS the merged boxes ``(K, 4)``. Empty input gives empty outputs.

Class awareness: each ``batched_*`` variant takes ``idxs (N,)`` (class / image ids, as in
torchvision) and boxes with different ids never act on each other. Hard NMS is torchvision's
``batched_nms``; the others run once per class on that class's boxes (one stable sort by id,
then a Python loop over the ids present) and merge the results by score. This is exact — no
coordinate offsets, which cost float32 precision once ``id · max_coord`` is large — and costs
O(sum of N_c²) instead of O(N²) for the quadratic parts.

How the sequential parts are vectorised:
    * DIoU-NMS resolves greedy NMS in blocks of score-sorted boxes: inside a block the greedy
      fixed point ``keep_j = alive_j and not any_{i<j}(keep_i and S_ij)`` is reached by iterating
      the whole vector (Cluster-NMS, Zheng et al., "Enhancing Geometric Factors in Model
      Learning and Inference for Object Detection and Instance Segmentation", IEEE T-CYB 2021,
      arXiv:2005.03572 — exact, converges in at most block-size iterations, usually a few); the
      block's kept boxes then suppress all later, still alive boxes in one matrix op. Memory
      stays O(block · N); every step is a tensor op on the device.
    * Soft-NMS is one pick per step (the next pick depends on every decayed score); each step
      is a handful of O(remaining) tensor ops; boxes that fall below the score threshold are
      masked at once and dropped from the working set every few steps.
    * Weighted NMS is torchvision NMS plus a vectorised cluster assignment.
"""

from __future__ import annotations

import math

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
# Boxes per block of the blocked greedy resolution, and pairs per IoU/DIoU call: bound the
# (rows, cols) temporaries to a few MiB each.
_BLOCK = 256
_MAX_PAIRS = 1 << 20
# Soft-NMS drops the boxes that fell below the score threshold from its working set once every
# this many picks (in between they are only masked): compaction costs more than one step.
_COMPACT_EVERY = 8


def _check(boxes: Tensor, scores: Tensor, idxs: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Validate shapes and devices; return float boxes and scores of the boxes' dtype."""
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
    boxes = boxes if boxes.is_floating_point() else boxes.float()
    return boxes, scores.to(boxes.dtype)


def _empty_keep(boxes: Tensor) -> Tensor:
    return torch.empty(0, dtype=torch.int64, device=boxes.device)


def _class_groups(idxs: Tensor) -> list[Tensor]:
    """Input indices of each class present, ascending within a class: ``[(N_c,), ...]``."""
    if idxs.numel() == 0:
        return []
    order = torch.argsort(idxs, stable=True)
    counts = torch.unique_consecutive(idxs[order], return_counts=True)[1]
    return list(order.split(counts.tolist()))


def _by_score(keep: Tensor, key: Tensor) -> Tensor:
    """Permutation putting ``keep`` in decreasing ``key`` order, ties by lower input index."""
    perm = torch.argsort(keep)
    return perm[torch.argsort(key[perm], descending=True, stable=True)]


# --------------------------------------------------------------------------- hard NMS


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS (torchvision): drop every box whose IoU with a higher-scoring kept box is
    ``> iou_threshold``. ``(N, 4), (N,) -> keep (K,)`` int64, by decreasing score."""
    boxes, scores = _check(boxes, scores)
    return tvops.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware :func:`nms` (torchvision ``batched_nms``). ``idxs (N,)`` -> ``keep (K,)``."""
    boxes, scores = _check(boxes, scores, idxs)
    return tvops.batched_nms(boxes, scores, idxs, iou_threshold)


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


def _soft_nms_one(
    boxes: Tensor, scores: Tensor, nt: float, sigma: float, threshold: float, linear: bool
) -> tuple[Tensor, Tensor]:
    """Soft-NMS of one class: ``keep (K,)`` into ``boxes`` and the scores at pick time."""
    index = torch.nonzero(scores >= threshold).squeeze(1)
    b, s = boxes[index], scores[index]
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    picks: list[Tensor] = []
    picked: list[Tensor] = []
    step = 0
    while s.numel() > 0:
        if step > 0 and step % _COMPACT_EVERY == 0:
            live = torch.nonzero(s >= threshold).squeeze(1)
            index, b, s, areas = index[live], b[live], s[live], areas[live]
            if s.numel() == 0:
                break
        step += 1
        i = torch.argmax(s)  # first maximum: ties go to the lower input index
        if not bool(s[i] >= threshold):  # only masked boxes left
            break
        picks.append(index[i])
        picked.append(s[i])
        iou = _iou_one(b[i], areas[i], b, areas)
        if linear:
            # Bodla et al. 2017, Eq. 2: s_i (1 - IoU) when IoU >= N_t, else unchanged.
            decay = torch.where(iou >= nt, 1 - iou, torch.ones_like(iou))
        else:
            # Bodla et al. 2017, Eq. 3: s_i exp(-IoU² / sigma), applied to every box.
            decay = torch.exp(-(iou * iou) / sigma)
        s = s * decay
        s[i] = -math.inf
        # Masked boxes are -inf; -inf · 0 is NaN, which this comparison also masks.
        s = s.masked_fill(~(s >= threshold), -math.inf)
    if not picks:
        return _empty_keep(boxes), scores.new_empty(0)
    # Picks come out in non-increasing score order: decay factors are <= 1, so no remaining
    # score can exceed the one just picked.
    return torch.stack(picks), torch.stack(picked)


def _soft_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor | None,
    nt: float,
    sigma: float,
    threshold: float,
    method: str,
) -> tuple[Tensor, Tensor]:
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f"method must be one of {SOFT_NMS_METHODS}, got {method!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"score_threshold must be finite, got {threshold}")
    if method == "gaussian" and sigma <= 0:
        raise ValueError(f"sigma must be > 0 for the Gaussian decay, got {sigma}")
    boxes, scores = _check(boxes, scores, idxs)
    linear = method == "linear"
    if idxs is None:
        return _soft_nms_one(boxes, scores, nt, sigma, threshold, linear)
    keeps, kept = [_empty_keep(boxes)], [scores.new_empty(0)]
    for group in _class_groups(idxs):
        keep, s = _soft_nms_one(boxes[group], scores[group], nt, sigma, threshold, linear)
        keeps.append(group[keep])
        kept.append(s)
    keep, s = torch.cat(keeps), torch.cat(kept)
    perm = _by_score(keep, s)
    return keep[perm], s[perm]


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
    both by decreasing decayed score (ties: lower index first).
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
    Results of all classes merged by decreasing decayed score (ties: lower index first)."""
    return _soft_nms(boxes, scores, idxs, iou_threshold, sigma, score_threshold, method)


# --------------------------------------------------------------------------- DIoU-NMS


def _suppresses(rows: Tensor, cols: Tensor, threshold: float) -> Tensor:
    """``DIoU(rows_i, cols_j) > threshold`` -> ``(R, C)`` bool, columns chunked."""
    step = max(1, _MAX_PAIRS // max(1, rows.shape[0]))
    parts = [
        distance_box_iou(rows, cols[j : j + step]) > threshold
        for j in range(0, cols.shape[0], step)
    ]
    if not parts:
        return rows.new_zeros((rows.shape[0], 0), dtype=torch.bool)
    return torch.cat(parts, dim=1)


def _diou_nms_one(boxes: Tensor, scores: Tensor, threshold: float) -> Tensor:
    """DIoU-NMS of one class: ``keep (K,)`` into ``boxes``, by decreasing score."""
    n = boxes.shape[0]
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    kept = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    removed = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    for start in range(0, n, _BLOCK):
        end = min(start + _BLOCK, n)
        alive = start + torch.nonzero(~removed[start:end]).squeeze(1)
        if alive.numel() == 0:
            continue
        rows = b[alive]
        sup = _suppresses(rows, rows, threshold).triu_(diagonal=1)
        keep = torch.ones(alive.shape[0], dtype=torch.bool, device=boxes.device)
        while True:  # Cluster-NMS fixed point (see module docstring)
            new = ~(keep[:, None] & sup).any(dim=0)
            if torch.equal(new, keep):
                break
            keep = new
        kept[alive[keep]] = True
        if end < n:
            cols = end + torch.nonzero(~removed[end:]).squeeze(1)
            if cols.numel() > 0:
                hit = _suppresses(rows[keep], b[cols], threshold).any(dim=0)
                removed[cols[hit]] = True
    return order[kept]


def diou_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """DIoU-NMS (Zheng et al., "Distance-IoU Loss", AAAI 2020, arXiv:1911.08287, Sec. 5):
    greedy NMS whose suppression test is ``DIoU = IoU - rho²/c² > iou_threshold``, so that
    overlapping boxes with distant centres (occluded neighbours) survive. The paper writes
    ``>=``; ``>`` keeps torchvision's convention, so that with coincident centres this is
    exactly :func:`nms`. ``(N, 4), (N,) -> keep (K,)`` int64, by decreasing score (ties: lower
    index first)."""
    boxes, scores = _check(boxes, scores)
    return _diou_nms_one(boxes, scores, iou_threshold)


def batched_diou_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware :func:`diou_nms`: only boxes with equal ``idxs`` suppress each other.
    ``keep (K,)`` by decreasing score over all classes (ties: lower index first)."""
    boxes, scores = _check(boxes, scores, idxs)
    keeps = [_empty_keep(boxes)]
    for group in _class_groups(idxs):
        keeps.append(group[_diou_nms_one(boxes[group], scores[group], iou_threshold)])
    keep = torch.cat(keeps)
    return keep[_by_score(keep, scores[keep])]


# --------------------------------------------------------------------------- weighted NMS


def _weighted_nms_one(boxes: Tensor, scores: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Weighted NMS of one class: ``keep (K,)`` into ``boxes`` and merged ``(K, 4)``."""
    keep = tvops.nms(boxes, scores, threshold)
    k, n = keep.shape[0], boxes.shape[0]
    # Cluster of a kept box = the boxes it suppressed: each suppressed box goes to the first
    # (highest-scoring) kept box with IoU > thr, which is the one that removed it in greedy
    # order. torchvision's box_iou uses the same float formula as its nms kernel. Columns
    # leave the working set as soon as they are assigned.
    owner = torch.full((n,), -1, dtype=torch.int64, device=boxes.device)
    owner[keep] = torch.arange(k, device=boxes.device)
    cols = torch.nonzero(owner < 0).squeeze(1)
    r = 0
    while r < k and cols.numel() > 0:
        step = max(1, _MAX_PAIRS // cols.numel())
        hit = tvops.box_iou(boxes[keep[r : r + step]], boxes[cols]) > threshold
        found = hit.any(dim=0)
        owner[cols[found]] = r + hit[:, found].to(torch.uint8).argmax(dim=0)
        cols = cols[~found]
        r += step
    member = torch.nonzero(owner >= 0).squeeze(1)
    w = scores[member]
    num = boxes.new_zeros((k, 4)).index_add_(0, owner[member], boxes[member] * w[:, None])
    den = boxes.new_zeros(k).index_add_(0, owner[member], w)
    safe = den.clamp(min=torch.finfo(den.dtype).tiny)[:, None]
    return keep, torch.where(den[:, None] > 0, num / safe, boxes[keep])


def _weighted_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor | None, iou_threshold: float
) -> tuple[Tensor, Tensor]:
    boxes, scores = _check(boxes, scores, idxs)
    if bool((scores < 0).any()):
        raise ValueError("weighted NMS averages with the scores as weights: scores must be >= 0")
    if idxs is None:
        return _weighted_nms_one(boxes, scores, iou_threshold)
    keeps, merged = [_empty_keep(boxes)], [boxes.new_empty((0, 4))]
    for group in _class_groups(idxs):
        keep, m = _weighted_nms_one(boxes[group], scores[group], iou_threshold)
        keeps.append(group[keep])
        merged.append(m)
    keep, m = torch.cat(keeps), torch.cat(merged)
    perm = _by_score(keep, scores[keep])
    return keep[perm], m[perm]


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
    """Class-aware :func:`weighted_nms`: clusters never mix ``idxs`` values. ``keep (K,)`` by
    decreasing score over all classes (ties: lower index first), merged ``boxes (K, 4)``."""
    return _weighted_nms(boxes, scores, idxs, iou_threshold)
