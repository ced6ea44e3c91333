"""The extractor interface: OpenCV methods and pointforge models give the same dict shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from pointforge.evaluation.extractors import OpenCVExtractor, build_extractor
from pointforge.evaluation.homography import HomographyEvalConfig, pair_metrics


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return cv2.resize(skimage.data.camera(), (200, 200), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize(("method", "dim"), [("sift", 128), ("orb", 256), ("gftt_sift", 128)])
def test_opencv_extractors_shape_order_and_matching(
    camera: np.ndarray, method: str, dim: int
) -> None:
    ex = build_extractor(method, max_keypoints=150)
    out = ex(camera)
    kp, scores, desc = out["keypoints"], out["scores"], out["descriptors"]
    assert 20 < len(kp) <= 150 and kp.dtype == np.float32 and kp.shape[1] == 2
    assert desc.shape == (len(kp), dim) and desc.dtype == np.float32
    assert np.all(np.diff(scores) <= 0)  # sorted by score, descending
    if method == "orb":  # unpacked Hamming bits
        assert set(np.unique(desc)) <= {0.0, 1.0}
    # A pure 7-px shift: keypoints and descriptors must follow it.
    shifted = np.zeros_like(camera)
    shifted[:, 7:] = camera[:, :-7]
    H = np.array([[1.0, 0, 7], [0, 1, 0], [0, 0, 1]])
    rec = pair_metrics(out, ex(shifted), H, camera.shape, camera.shape, HomographyEvalConfig())
    assert rec.rep > 0.6 and rec.m_score > 0.4 and rec.corner_error < 2.0


def test_opencv_extractor_rejects_bad_input(camera: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown OpenCV method 'surf'"):
        OpenCVExtractor("surf")
    with pytest.raises(ValueError, match=r"sift: expected a \(H, W\) uint8"):
        OpenCVExtractor("sift")(camera.astype(np.float32))
    blank = OpenCVExtractor("orb")(np.zeros((64, 64), np.uint8))
    assert blank["keypoints"].shape == (0, 2) and blank["descriptors"].shape == (0, 256)


def test_pointforge_extractor_is_the_predictor(camera: np.ndarray) -> None:
    ex = build_extractor("pointforge", device="cpu", max_keypoints=100)
    out = ex(camera)
    assert out["keypoints"].shape[1] == 2 and len(out["keypoints"]) <= 100
    assert np.all(np.diff(out["scores"]) <= 0)
    # The shipped default is the SuperPoint: unit-length descriptors, one per keypoint.
    desc = out["descriptors"]
    assert desc is not None and desc.shape == (len(out["keypoints"]), 256)
    assert np.allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-4)


def _chebyshev_pairs(kp: np.ndarray) -> np.ndarray:
    """``(N, N)`` Chebyshev distances of the points (diagonal = inf)."""
    d = np.abs(kp[:, None].astype(np.float64) - kp[None]).max(-1)
    np.fill_diagonal(d, np.inf)
    return d


@pytest.mark.parametrize("method", ["sift", "orb"])
def test_opencv_lists_go_through_the_networks_nms(method: str) -> None:
    big = cv2.resize(skimage.data.camera(), (400, 400), interpolation=cv2.INTER_AREA)
    raw = OpenCVExtractor(method, max_keypoints=300, opencv_nms=False)(big)
    nms = OpenCVExtractor(method, max_keypoints=300, nms_radius=4)(big)
    # OpenCV's own list repeats locations (ORB per pyramid level, SIFT per orientation).
    assert (_chebyshev_pairs(raw["keypoints"]).min(1) <= 1).mean() > 0.1
    # After NMS no two kept points are within the network's 9x9 window of each other.
    assert _chebyshev_pairs(nms["keypoints"]).min() >= 4.5 - 1e-4
    assert len(nms["keypoints"]) > 100
    # The strongest point survives; every kept point is one of OpenCV's, with its descriptor.
    assert np.allclose(nms["keypoints"][0], raw["keypoints"][0])
    full = OpenCVExtractor(method, max_keypoints=100000, opencv_nms=False)(big)
    # SIFT may list one position and response twice (two orientations, two descriptors).
    by_point: dict[tuple[float, ...], list[np.ndarray]] = {}
    for p, s, desc in zip(full["keypoints"], full["scores"], full["descriptors"], strict=True):
        by_point.setdefault((*p.tolist(), float(s)), []).append(desc)
    for p, s, desc in zip(nms["keypoints"], nms["scores"], nms["descriptors"], strict=True):
        assert any(np.array_equal(d, desc) for d in by_point[(*p.tolist(), float(s))])
    assert np.all(np.diff(nms["scores"]) <= 0) and len(nms["keypoints"]) <= 300
