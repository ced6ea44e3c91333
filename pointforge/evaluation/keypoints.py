"""Detector AP on Synthetic Shapes: the frozen protocol of docs/evaluation.md.

1. Per image, detections are visited in descending score order; each is a true positive if an
   unmatched ground-truth point of the same image lies within ``distance`` px (≤), and it is
   matched to the nearest such point (ties: lowest GT index).
2. All detections of all images are pooled and ranked by score (stable: ties keep image order).
3. AP is the all-points area under the precision–recall curve: precision is made
   non-increasing from the right, then summed over recall steps. Recall's denominator is the
   total number of ground-truth points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist


def _check_image(
    keypoints: np.ndarray, scores: np.ndarray, gt: np.ndarray, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one image's arrays and return them as float64 ``(N, 2)``, ``(N,)``, ``(K, 2)``."""
    kpts = np.asarray(keypoints, np.float64)
    sc = np.asarray(scores, np.float64)
    g = np.asarray(gt, np.float64)
    if kpts.size == 0:
        kpts = kpts.reshape(0, 2)
    if g.size == 0:
        g = g.reshape(0, 2)
    if kpts.ndim != 2 or kpts.shape[1] != 2:
        raise ValueError(f"predictions[{index}] keypoints must be (N, 2) (x, y), got {kpts.shape}")
    if sc.shape != (len(kpts),):
        raise ValueError(
            f"predictions[{index}] scores must be ({len(kpts)},) to match keypoints, got {sc.shape}"
        )
    if g.ndim != 2 or g.shape[1] != 2:
        raise ValueError(f"ground_truth[{index}] must be (K, 2) (x, y), got {g.shape}")
    return kpts, sc, g


def match_image(
    keypoints: np.ndarray, scores: np.ndarray, gt: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image: ``keypoints (N, 2)``, ``scores (N,)``, ``gt (K, 2)``.

    Returns ``(is_tp (N,) bool, error (N,) float64)`` with ``error`` NaN for false positives.
    Detections are visited in descending score order (ties: lower detection index first); each
    takes the nearest still-free GT point within ``distance`` (≤; ties: lowest GT index).

    The distance matrix is computed once (``cdist``). Only detections with at least one GT point
    in range can ever match, so the greedy loop visits those rows alone; and when no GT point is
    contested (every in-range GT has one candidate and every candidate one GT), the greedy result
    equals the direct assignment and no loop runs at all.
    """
    n = len(keypoints)
    tp = np.zeros(n, bool)
    err = np.full(n, np.nan)
    if n == 0 or len(gt) == 0:
        return tp, err
    d = cdist(keypoints, gt)
    d[d > distance] = np.inf
    within = np.isfinite(d)
    candidates = np.flatnonzero(within.any(axis=1))
    if len(candidates) == 0:
        return tp, err
    if within[candidates].sum(axis=1).max() == 1 and within.sum(axis=0).max() == 1:
        j = np.argmin(d[candidates], axis=1)
        tp[candidates], err[candidates] = True, d[candidates, j]
        return tp, err
    sub = d[candidates]
    order = np.argsort(-scores[candidates], kind="stable")
    for r in order:
        j = int(np.argmin(sub[r]))
        if np.isfinite(sub[r, j]):
            tp[candidates[r]], err[candidates[r]] = True, sub[r, j]
            sub[:, j] = np.inf  # this GT point is taken
    return tp, err


def precision_recall_curve(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truth: Sequence[np.ndarray],
    distance: float = 4.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled precision/recall over the global score ranking (for plots and for the AP).

    Returns ``(precision (D,), recall (D,), scores (D,), tp_errors (T,))`` where ``D`` is the
    number of detections over all images, sorted by score descending (stable: equal scores keep
    image order, then detection order), and ``tp_errors`` are the distances of the true
    positives. Recall's denominator is the total number of GT points (recall is 0 when none).
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(
            f"predictions has {len(predictions)} images but ground_truth has {len(ground_truth)}"
        )
    if not (np.isfinite(distance) and distance > 0):
        raise ValueError(f"distance must be a positive finite number of pixels, got {distance}")
    all_scores, all_tp, errors = [], [], []
    for i, ((kpts, scores), gt) in enumerate(zip(predictions, ground_truth)):
        kpts, scores, gt = _check_image(kpts, scores, gt, i)
        tp, err = match_image(kpts, scores, gt, distance)
        all_scores.append(scores)
        all_tp.append(tp)
        errors.append(err[tp])
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tps = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    tps, scores = tps[order], scores[order]
    n_gt = sum(len(g) for g in ground_truth)
    cum_tp = np.cumsum(tps)
    precision = cum_tp / np.arange(1, len(tps) + 1)
    recall = cum_tp / max(n_gt, 1)
    return precision, recall, scores, np.concatenate(errors) if errors else np.zeros(0)


def detection_ap(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truth: Sequence[np.ndarray],
    distance: float = 4.0,
) -> dict[str, float]:
    """Pooled AP at ``distance`` px and localisation error (mean TP distance), docs/evaluation.md.

    ``predictions[i] = (keypoints (N_i, 2) (x, y), scores (N_i,))``; ``ground_truth[i]`` is
    ``(K_i, 2)`` (x, y) in the same pixel frame. Returns Python floats: ``ap``, ``loc_error``
    (NaN when there is no true positive), ``precision`` and ``recall`` at the end of the ranking,
    ``num_detections``, ``num_ground_truth``, ``num_true_positives``.

    Edge cases: with no ground truth at all the AP is 0.0 (nothing can be recalled, and a
    metric of 1.0 for "no points, no detections" would reward a blind detector); images without
    detections contribute only to the recall denominator; detections in images without ground
    truth are all false positives.
    """
    precision, recall, _, errors = precision_recall_curve(predictions, ground_truth, distance)
    n_gt = sum(len(g) for g in ground_truth)
    if len(precision) and n_gt:
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        steps = np.diff(np.r_[0.0, recall])
        ap = float(np.sum(steps * envelope))
    else:
        ap = 0.0
    return {
        "ap": ap,
        "loc_error": float(errors.mean()) if len(errors) else float("nan"),
        "precision": float(precision[-1]) if len(precision) else 0.0,
        "recall": float(recall[-1]) if len(recall) else 0.0,
        "num_detections": float(len(precision)),
        "num_ground_truth": float(n_gt),
        "num_true_positives": float(len(errors)),
    }
