from __future__ import annotations

import cv2
import numpy as np
import pytest

from pointforge.evaluation.baselines import classical_keypoints, classical_keypoints_batch
from pointforge.evaluation.keypoints import detection_ap

CORNERS = np.array([[20, 20], [60, 20], [60, 60], [20, 60]], np.float32)


@pytest.mark.parametrize("method", ["fast", "harris", "shi"])
def test_square_corners_are_found(method: str) -> None:
    img = np.zeros((80, 96), np.uint8)
    cv2.rectangle(img, (20, 20), (60, 60), 255, -1)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)  # like rendered images (FAST needs a ramp)
    kpts, scores = classical_keypoints(img, method, max_keypoints=50)
    assert np.all(np.diff(scores) <= 0)
    # Scores are normalised per image, so a dimmer copy scores on the same scale.
    assert scores[0] == pytest.approx(1.0) and scores.min() > 0
    _, dim_scores = classical_keypoints(img // 2, method, max_keypoints=50)
    assert dim_scores.max() == pytest.approx(1.0)
    d = np.linalg.norm(CORNERS[:, None] - kpts[None], axis=2).min(axis=1)
    assert d.max() <= 2.0, d
    few, _ = classical_keypoints(img, method, max_keypoints=2)
    assert len(few) == 2
    edge, _ = classical_keypoints(img, method, border=25)
    assert len(edge) == 0 or (edge.min() >= 25 and edge[:, 0].max() < 96 - 25)


def test_batch_bgr_and_ap_on_square() -> None:
    # The 4 corners of a square are the GT; Shi-Tomasi on it (grey and BGR alike) gets AP 1.
    img = cv2.rectangle(np.zeros((80, 96), np.uint8), (20, 20), (60, 60), 255, -1)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    (k1, s1), (k2, s2) = classical_keypoints_batch([img, bgr], "shi", max_keypoints=4)
    assert np.array_equal(k1, k2) and np.array_equal(s1, s2) and k1.dtype == np.float32
    assert detection_ap([(k1, s1)], [CORNERS])["ap"] == pytest.approx(1.0)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="valid: fast, harris, shi"):
        classical_keypoints(np.zeros((8, 8), np.uint8), "sift")
    with pytest.raises(ValueError, match="image must be uint8"):
        classical_keypoints(np.zeros((8, 8), np.float32), "fast")
    with pytest.raises(ValueError, match="nms_radius"):
        classical_keypoints(np.zeros((8, 8), np.uint8), "harris", nms_radius=-1)
