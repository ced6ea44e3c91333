"""Mutual-NN matching, RANSAC homography and the match figure on small real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

from pointforge.models.superpoint import superpoint
from pointforge.tasks.keypoints.matching import (
    INLIER_BGR,
    KEYPOINT_BGR,
    LEGEND_HEIGHT,
    MIN_RELIABLE_INLIER_RATIO,
    MIN_RELIABLE_INLIERS,
    OUTLIER_BGR,
    MatchResult,
    draw_matches,
    estimate_homography,
    match_descriptors,
    match_features,
)
from pointforge.tasks.keypoints.predictor import KeypointPredictor


def test_mutual_nn_keeps_only_mutual_pairs() -> None:
    d1 = np.array([[1, 0], [0, 1], [0.9, 0.1]], np.float32)
    d2 = np.array([[0, 1], [1, 0]], np.float32)
    # 0↔1 and 1↔0 are mutual; 2's NN is d2[1] but d2[1]'s NN is d1[0], so 2 is dropped.
    assert match_descriptors(d1, d2).tolist() == [[0, 1], [1, 0]]
    assert match_descriptors(d1[:0], d2).shape == (0, 2)
    with pytest.raises(ValueError, match="same D"):
        match_descriptors(d1, np.zeros((2, 3), np.float32))


def test_ransac_recovers_known_homography_and_flags_outliers() -> None:
    rng = np.random.default_rng(0)
    H = np.array([[1.05, 0.02, 4.0], [-0.03, 0.98, -2.0], [1e-4, -5e-5, 1.0]])
    p1 = rng.uniform(0, 200, (60, 2))
    q = np.c_[p1, np.ones(60)] @ H.T
    p2 = q[:, :2] / q[:, 2:]
    p2[:10] += rng.uniform(30, 60, (10, 2))  # 10 gross outliers
    H_est, inliers = estimate_homography(p1, p2, 3.0)
    assert H_est is not None and np.allclose(H_est / H_est[2, 2], H, atol=1e-3)
    assert not inliers[:10].any() and inliers[10:].all()
    H_none, none = estimate_homography(p1[:3], p2[:3])
    assert H_none is None and none.shape == (3,) and not none.any()


def test_image_matched_to_itself_gives_identity() -> None:
    torch.manual_seed(0)
    pred = KeypointPredictor(superpoint(), device="cpu", max_keypoints=300)
    image = cv2.resize(skdata.camera(), (160, 160), interpolation=cv2.INTER_AREA)
    f = pred(image)
    result = match_features(f, f, ransac_threshold=3.0)
    assert len(result.matches) >= 100
    assert np.array_equal(result.matches[:, 0], result.matches[:, 1])
    assert result.inliers.all() and result.H is not None
    assert np.allclose(result.H / result.H[2, 2], np.eye(3), atol=1e-4)
    with pytest.raises(ValueError, match="needs descriptors"):
        match_features({**f, "descriptors": None}, f)


def test_draw_matches_colours_inliers_and_outliers() -> None:
    img = np.full((40, 50), 0, np.uint8)
    k1 = np.array([[5.0, 5.0], [5.0, 35.0]], np.float32)
    k2 = np.array([[40.0, 5.0], [40.0, 35.0]], np.float32)
    res = MatchResult(k1, k2, np.array([[0, 0], [1, 1]]), np.array([True, False]), None)
    canvas = draw_matches(img, cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), res)
    top = LEGEND_HEIGHT
    assert canvas.shape == (top + 40, 100, 3)
    # The horizontal line at y=5 is green (inlier), the one at y=35 red (outlier).
    # Anti-aliased lines: compare which channel lights up, and that the other stays dark.
    green, red = canvas[top + 5, 30].astype(int), canvas[top + 35, 30].astype(int)
    assert green[1] > 100 and green[2] == 0 and np.argmax(INLIER_BGR) == 1
    assert red[2] > 100 and red[1] == 0 and np.argmax(OUTLIER_BGR) == 2


def test_reliability_thresholds_and_legend() -> None:
    """15 inliers at ratio 0.25 is the least that counts as reliable (COLMAP's defaults); the
    legend band states the counts and turns red below the thresholds."""
    k = np.stack([np.arange(80.0), np.arange(80.0)], 1).astype(np.float32)
    pairs = np.stack([np.arange(80), np.arange(80)], 1)

    def result(n_inliers: int, n_matches: int) -> MatchResult:
        inl = np.arange(n_matches) < n_inliers
        return MatchResult(k, k, pairs[:n_matches], inl, np.eye(3))

    assert result(15, 60).reliable and result(15, 60).summary() == "60 matches, 15 inliers (25 %)"
    assert not result(14, 20).reliable  # ratio fine, too few inliers
    assert not result(15, 61).reliable  # enough inliers, ratio 0.246
    assert result(5, 46).summary() == "46 matches, 5 inliers (11 %): no reliable homography"
    assert (MIN_RELIABLE_INLIERS, MIN_RELIABLE_INLIER_RATIO) == (15, 0.25)
    img = np.full((80, 80, 3), 90, np.uint8)
    img[..., 0] = 200  # a colour image stays in colour
    good, bad = draw_matches(img, img, result(15, 60)), draw_matches(img, img, result(5, 46))
    band_good, band_bad = good[:LEGEND_HEIGHT], bad[:LEGEND_HEIGHT]
    assert (band_good.max(axis=2) > 200).sum() > 50  # white text drawn
    assert not np.array_equal(band_good, band_bad)  # the text depends on the counts
    assert ((band_bad[..., 2] > 150) & (band_bad[..., 1] < 60)).sum() > 50  # red when unreliable
    assert (good[LEGEND_HEIGHT:, :80] == (200, 90, 90)).all(axis=2).mean() > 0.3
    # Keypoints are yellow dots, visible on a grey image too.
    x, y = 40, 40
    assert tuple(good[LEGEND_HEIGHT + y, x]) != (200, 90, 90)
    one = np.array([[10.0, 12.0]], np.float32)
    lone = MatchResult(one, one, np.zeros((0, 2), np.int64), np.zeros(0, bool), None)
    canvas = draw_matches(img[..., 1], img[..., 1], lone)
    assert tuple(canvas[LEGEND_HEIGHT + 12, 10]) == KEYPOINT_BGR
    assert tuple(canvas[LEGEND_HEIGHT + 12, 80 + 10]) == KEYPOINT_BGR
