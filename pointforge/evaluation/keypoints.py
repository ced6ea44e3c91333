"""Detector AP on Synthetic Shapes: the frozen protocol of DESIGN.md §4.

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


def match_image(
    keypoints: np.ndarray, scores: np.ndarray, gt: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image. Returns ``(is_tp (N,) bool, error (N,) float)``.

    The greedy loop runs over this image's detections only, on a precomputed distance matrix.
    """
    n = len(keypoints)
    tp = np.zeros(n, bool)
    err = np.full(n, np.nan)
    if n == 0 or len(gt) == 0:
        return tp, err
    d = cdist(np.asarray(keypoints, np.float64).reshape(-1, 2), np.asarray(gt, np.float64))
    d[d > distance] = np.inf
    order = np.argsort(-np.asarray(scores), kind="stable")
    for i in order:
        j = int(np.argmin(d[i]))
        if np.isfinite(d[i, j]):
            tp[i], err[i] = True, d[i, j]
            d[:, j] = np.inf  # this GT point is taken
    return tp, err


def precision_recall_curve(
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    ground_truth: Sequence[np.ndarray],
    distance: float = 4.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled ``(precision, recall, scores, errors_of_tps)`` over the score ranking."""
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truth)} GT images")
    all_scores, all_tp, errors = [], [], []
    for (kpts, scores), gt in zip(predictions, ground_truth):
        tp, err = match_image(kpts, scores, gt, distance)
        all_scores.append(np.asarray(scores, np.float64).reshape(-1))
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
    """Pooled AP at ``distance`` px and localisation error (mean TP distance).

    With no ground truth at all the AP is 0.0 (nothing can be recalled).
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
