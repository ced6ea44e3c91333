"""tools/shapes_misses.py: the split of unmatched corners into taken and undetected."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from shapes_misses import classify_misses, local_contrast


def test_local_contrast_is_the_patch_std() -> None:
    img = np.zeros((20, 20), np.uint8)
    img[:, 10:] = 100  # a vertical edge at x = 10
    c = local_contrast(img, np.array([[3.0, 3.0], [10.0, 10.0], [0.0, 0.0]]))
    assert c[0] == 0.0  # flat
    # 7×7 patch at x 7..13: three columns of 0, four of 100 → std of {0×3, 100×4}
    assert np.isclose(c[1], np.std([0, 0, 0, 100, 100, 100, 100]))
    assert c[2] == 0.0  # clipped at the corner of the image, still flat


def test_unmatched_corners_are_split_into_taken_and_undetected() -> None:
    clean = np.zeros((40, 40), np.uint8)
    clean[10:20, 10:20] = 200  # bright square whose top edge runs through both corners
    gt = np.array([[10.0, 10.0], [13.0, 10.0], [30.0, 30.0]], np.float32)
    # One detection between the first two corners, none near the flat third one.
    dets = [(np.array([[11.0, 10.0]]), np.array([0.9]))]
    r = classify_misses(dets, [gt], [clean], distance=4.0)
    assert (r.ground_truth, r.matched, r.taken, r.undetected) == (3, 1, 1, 1)
    assert r.undetected_contrast.tolist() == [0.0]
    assert len(r.found_contrast) == 2 and (r.found_contrast > 50).all()


def test_images_without_detections_count_every_corner_as_undetected() -> None:
    clean = np.zeros((16, 16), np.uint8)
    gt = np.array([[4.0, 4.0], [12.0, 12.0]], np.float32)
    empty = (np.zeros((0, 2)), np.zeros(0))
    r = classify_misses([empty, empty], [gt, np.zeros((0, 2))], [clean, clean], distance=4.0)
    assert (r.ground_truth, r.matched, r.taken, r.undetected) == (2, 0, 0, 2)
