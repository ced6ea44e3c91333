from __future__ import annotations

import math

import numpy as np
import pytest

from pointforge.evaluation.keypoints import detection_ap, precision_recall_curve


def arr(*xy: tuple[float, float]) -> np.ndarray:
    return np.array(xy, np.float64).reshape(-1, 2)


def test_perfect_detections() -> None:
    gt = [arr((10, 10), (20, 30)), arr((5, 5))]
    preds = [(gt[0] + [0.5, 0.0], np.array([0.9, 0.8])), (gt[1] + [0.0, 1.5], np.array([0.7]))]
    r = detection_ap(preds, gt)
    assert r["ap"] == pytest.approx(1.0)
    assert r["loc_error"] == pytest.approx((0.5 + 0.5 + 1.5) / 3)
    assert r["num_true_positives"] == 3 and r["recall"] == 1.0


def test_hand_computed_interleaved_case() -> None:
    # 3 GT points in 2 images. Ranked: 0.9 TP, 0.8 FP, 0.7 TP.
    # precision 1, 1/2, 2/3; recall 1/3, 1/3, 2/3
    # all-points AP = 1/3 * 1 + (2/3 - 1/3) * 2/3 = 0.5556
    gt = [arr((10, 10), (40, 40)), arr((10, 10))]
    preds = [(arr((10, 10), (60, 60)), np.array([0.9, 0.8])), (arr((11, 10)), np.array([0.7]))]
    assert detection_ap(preds, gt)["ap"] == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))
    p, r, s, _ = precision_recall_curve(preds, gt)
    assert np.allclose(p, [1, 0.5, 2 / 3]) and np.allclose(r, [1 / 3, 1 / 3, 2 / 3])
    assert list(s) == [0.9, 0.8, 0.7]


def test_two_detections_one_gt_only_higher_score_matches() -> None:
    gt = [arr((10, 10))]
    preds = [(arr((11, 10), (10, 10)), np.array([0.9, 0.5]))]  # the exact one scores lower
    r = detection_ap(preds, gt)
    assert r["num_true_positives"] == 1 and r["loc_error"] == pytest.approx(1.0)
    assert r["precision"] == 0.5 and r["ap"] == pytest.approx(1.0)


def test_distance_threshold_is_inclusive() -> None:
    gt = [arr((0, 0))]
    assert detection_ap([(arr((4.0, 0)), np.array([1.0]))], gt)["ap"] == 1.0
    assert detection_ap([(arr((4.01, 0)), np.array([1.0]))], gt)["ap"] == 0.0
    assert detection_ap([(arr((3.0, 3.0)), np.array([1.0]))], gt, distance=4.0)["ap"] == 0.0


def test_ranking_is_pooled_across_images() -> None:
    # Image 2 has a high-scoring FP that outranks image 1's low-scoring TP.
    gt = [arr((10, 10)), arr((50, 50))]
    preds = [(arr((10, 10)), np.array([0.1])), (arr((0, 0), (50, 50)), np.array([0.9, 0.8]))]
    # ranked: 0.9 FP, 0.8 TP, 0.1 TP → precision 0, .5, .667; recall 0, .5, 1
    # envelope .667 at both steps → AP = .5 * .667 + .5 * .667
    assert detection_ap(preds, gt)["ap"] == pytest.approx(2 / 3)


def test_empty_inputs() -> None:
    gt = [arr((1, 1)), np.zeros((0, 2))]
    none = [(np.zeros((0, 2)), np.zeros(0)), (np.zeros((0, 2)), np.zeros(0))]
    r = detection_ap(none, gt)
    assert r["ap"] == 0.0 and math.isnan(r["loc_error"]) and r["num_detections"] == 0
    fp_only = [(np.zeros((0, 2)), np.zeros(0)), (arr((3, 3)), np.array([0.5]))]
    assert detection_ap(fp_only, gt)["ap"] == 0.0
    assert detection_ap(none, [np.zeros((0, 2))] * 2)["ap"] == 0.0
    with pytest.raises(ValueError, match="predictions"):
        detection_ap(none, gt[:1])


def _reference_ap(preds, gts, distance):
    """Plain-Python restatement of the protocol, to cross-check the vectorised version."""
    ranked, n_gt = [], 0
    for (kpts, scores), gt in zip(preds, gts):
        n_gt += len(gt)
        free = list(range(len(gt)))
        for i in sorted(range(len(kpts)), key=lambda i: -scores[i]):
            dists = [(float(np.hypot(*(kpts[i] - gt[j]))), j) for j in free]
            dists = [(d, j) for d, j in dists if d <= distance]
            if dists:
                free.remove(min(dists)[1])
            ranked.append((-scores[i], bool(dists)))
    ranked.sort(key=lambda t: t[0])
    tp = np.cumsum([t for _, t in ranked])
    prec, rec = tp / np.arange(1, len(tp) + 1), tp / n_gt
    env = np.maximum.accumulate(prec[::-1])[::-1]
    return float(np.sum(np.diff(np.r_[0, rec]) * env))


def test_matches_reference_on_random_scenes() -> None:
    # Crowded: several detections compete for each GT point, so the greedy loop path runs.
    # Sparse: jittered GT points plus far-away FPs, nothing contested, so the loop-free path runs.
    # Both must equal the plain-Python reference, and must be non-trivial (0 < AP < 1).
    rng = np.random.default_rng(0)
    gts = [rng.uniform(0, 12, (int(rng.integers(0, 8)), 2)) for _ in range(6)]
    preds = [(rng.uniform(0, 12, (40, 2)), rng.random(40)) for _ in range(6)]
    crowded = detection_ap(preds, gts)["ap"]
    assert 0.0 < crowded < 1.0
    assert crowded == pytest.approx(_reference_ap(preds, gts, 4.0), abs=1e-12)

    gts = [rng.uniform(0, 20, (5, 2)) * [10, 10] for _ in range(4)]
    preds = []
    for g in gts:
        kp = np.concatenate([g[:4] + rng.normal(0, 1.0, (4, 2)), rng.uniform(300, 400, (3, 2))])
        preds.append((kp, rng.random(7)))
    sparse = detection_ap(preds, gts)
    assert 0.0 < sparse["ap"] < 1.0 and sparse["num_true_positives"] == 16
    assert sparse["ap"] == pytest.approx(_reference_ap(preds, gts, 4.0), abs=1e-12)


def test_bad_inputs_name_the_argument() -> None:
    gt = [arr((1, 1))]
    with pytest.raises(ValueError, match="distance"):
        detection_ap([(arr((1, 1)), np.array([1.0]))], gt, distance=0.0)
    with pytest.raises(ValueError, match=r"predictions\[0\] scores"):
        detection_ap([(arr((1, 1)), np.array([1.0, 0.5]))], gt)
    with pytest.raises(ValueError, match=r"ground_truth\[0\]"):
        detection_ap([(arr((1, 1)), np.array([1.0]))], [np.zeros((2, 3))])
