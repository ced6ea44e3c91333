from __future__ import annotations

import cv2
import numpy as np
import pytest

from pointforge.evaluation.baselines import classical_keypoints

CORNERS = np.array([[20, 20], [60, 20], [60, 60], [20, 60]], np.float32)


@pytest.mark.parametrize("method", ["fast", "harris", "shi"])
def test_square_corners_are_found(method: str) -> None:
    img = np.zeros((80, 96), np.uint8)
    cv2.rectangle(img, (20, 20), (60, 60), 255, -1)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)  # like rendered images (FAST needs a ramp)
    kpts, scores = classical_keypoints(img, method, max_keypoints=50)
    assert np.all(np.diff(scores) <= 0)
    d = np.linalg.norm(CORNERS[:, None] - kpts[None], axis=2).min(axis=1)
    assert d.max() <= 2.0, d
    few, _ = classical_keypoints(img, method, max_keypoints=2)
    assert len(few) == 2
    edge, _ = classical_keypoints(img, method, border=25)
    assert len(edge) == 0 or (edge.min() >= 25 and edge[:, 0].max() < 96 - 25)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="valid: fast, harris, shi"):
        classical_keypoints(np.zeros((8, 8), np.uint8), "sift")
