"""One "extractor" interface for every method a homography benchmark compares.

An extractor is a callable ``(H, W) uint8 grey image → {"keypoints": (N, 2) float32 (x, y),
"scores": (N,) float32, "descriptors": (N, D) float32 or None}`` with points sorted by score
descending, exactly what :class:`pointforge.tasks.keypoints.predictor.KeypointPredictor`
returns. pointforge models therefore are extractors as they are; this module wraps OpenCV's
SIFT, ORB and Shi-Tomasi (+ SIFT descriptors) into the same shape so that all methods go
through the same metric code.

ORB descriptors are binary; they are unpacked to 256 {0, 1} floats, whose squared Euclidean
distance *is* the Hamming distance, so the shared nearest-neighbour matcher stays exact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from pointforge.evaluation.baselines import classical_keypoints
from pointforge.ops import nms

Features = dict[str, np.ndarray | None]
Extractor = Callable[[np.ndarray], Features]

OPENCV_METHODS = ("sift", "orb", "gftt_sift")
# SIFT descriptor support for Shi-Tomasi corners, which have no scale of their own: the
# descriptor window is about 6x this size, ~50 px, similar to SuperPoint's 8-px cells x 4-cell
# receptive context. Fixed, like the upright orientation (angle 0).
GFTT_KEYPOINT_SIZE = 8.0


def _suppress(xy: np.ndarray, resp: np.ndarray, radius: int) -> np.ndarray:
    """Indices of the points ``(N, 2)`` that survive greedy NMS of ``radius``, strongest first.

    OpenCV's lists repeat locations: ORB finds a corner again at several pyramid levels and SIFT
    emits one point per dominant orientation (on our held-out photos at 480x640, 70 % of ORB's
    and 40 % of SIFT's top-300 points have another point within 2 px), and repeatability would
    count such a location several times. Greedy NMS keeps the strongest point and drops the
    others within the network's window (Chebyshev distance <= ``radius``), as the public
    TensorFlow re-implementation of SuperPoint does for its SIFT/ORB baselines (box NMS).
    Greedy rather than max-pool: a dropped point suppresses nothing, which keeps more of a
    clustered list (of ORB's 3,000 points ~600 survive here, ~400 a max-pool NMS).
    Implemented with the hard box NMS of :mod:`pointforge.ops.nms` (torchvision's) on boxes of
    side ``radius + 0.5``, which overlap exactly when the centres are less than ``radius + 0.5``
    apart along both axes; it returns the kept indices by decreasing response.
    """
    if radius <= 0 or len(xy) == 0:
        return np.argsort(-resp, kind="stable")
    centres = torch.from_numpy(np.asarray(xy, np.float32))
    half = (radius + 0.5) / 2
    boxes = torch.cat([centres - half, centres + half], 1)
    return nms(boxes, torch.from_numpy(np.asarray(resp, np.float32)), iou_threshold=0.0).numpy()


def _sorted(
    kpts: list[cv2.KeyPoint],
    desc: np.ndarray | None,
    limit: int,
    nms_radius: int = 0,
) -> Features:
    """KeyPoints + descriptors → feature dict sorted by response, at most ``limit`` points,
    after :func:`_suppress` when ``nms_radius`` > 0."""
    resp = np.array([k.response for k in kpts], np.float32)
    xy = np.array([k.pt for k in kpts], np.float32).reshape(-1, 2)
    order = _suppress(xy, resp, nms_radius)[:limit]
    if desc is None or len(kpts) == 0:
        desc_out = np.zeros((0, 128), np.float32) if desc is None else desc
    else:
        desc_out = desc[order]
    return {"keypoints": xy[order], "scores": resp[order], "descriptors": desc_out}


class OpenCVExtractor:
    """``sift``: OpenCV SIFT defaults; ``orb``: ORB (FAST threshold 20, 8 levels);
    ``gftt_sift``: Shi-Tomasi corners (the network's NMS radius and border, via
    :func:`~pointforge.evaluation.baselines.classical_keypoints`) described by SIFT.

    ``opencv_nms``: SIFT's and ORB's own lists also go through the network's NMS of
    ``nms_radius`` (:func:`_suppress`); False keeps OpenCV's lists as they are."""

    def __init__(
        self,
        method: str,
        max_keypoints: int = 1000,
        nms_radius: int = 4,
        opencv_nms: bool = True,
    ) -> None:
        if method not in OPENCV_METHODS:
            raise ValueError(
                f"unknown OpenCV method '{method}'; valid: {', '.join(OPENCV_METHODS)}"
            )
        self.name = method
        self.max_keypoints = max_keypoints
        self.nms_radius = nms_radius
        self._list_nms = nms_radius if opencv_nms else 0
        # Ask for more than kept: OpenCV's own cap is not by response for every method, and
        # NMS drops most of ORB's points (its pyramid levels repeat corners): of 5,000, ~800
        # survive on 480x640 photos.
        self._sift = cv2.SIFT.create()
        self._orb = cv2.ORB.create(nfeatures=5 * max_keypoints) if method == "orb" else None

    def __call__(self, image: np.ndarray) -> Features:
        if image.dtype != np.uint8 or image.ndim != 2:
            raise ValueError(
                f"{self.name}: expected a (H, W) uint8 image, got {image.dtype} {image.shape}"
            )
        if self.name == "sift":
            kpts, desc = self._sift.detectAndCompute(image, None)
            return _sorted(list(kpts), desc, self.max_keypoints, self._list_nms)
        if self.name == "orb":
            if self._orb is None:  # built in __init__ exactly when method == "orb"
                raise RuntimeError("OpenCV ORB extractor was not created")
            kpts, desc = self._orb.detectAndCompute(image, None)
            # ORB descriptors are CV_8U (N, 32): asarray (no copy) states that type for unpackbits.
            bits = (
                None
                if desc is None
                else np.unpackbits(np.asarray(desc, np.uint8), axis=1).astype(np.float32)
            )
            out = _sorted(list(kpts), bits, self.max_keypoints, self._list_nms)
            if out["descriptors"] is not None and out["descriptors"].shape[1] != 256:
                out["descriptors"] = np.zeros((0, 256), np.float32)
            return out
        xy, scores = classical_keypoints(
            image, "shi", max_keypoints=self.max_keypoints, nms_radius=self.nms_radius
        )
        kpts = [cv2.KeyPoint(float(x), float(y), GFTT_KEYPOINT_SIZE, 0.0) for x, y in xy]
        kpts_out, desc = self._sift.compute(image, kpts)
        if len(kpts_out) != len(kpts):  # SIFT may drop points it cannot describe
            raise RuntimeError("gftt_sift: SIFT dropped keypoints; lower GFTT_KEYPOINT_SIZE")
        return {"keypoints": xy, "scores": scores, "descriptors": desc.astype(np.float32)}


def build_extractor(
    method: str,
    weights: str | Path | None = None,
    device: str = "auto",
    max_keypoints: int = 1000,
    detection_threshold: float = 0.015,
    nms_radius: int = 4,
    border: int = 4,
) -> Extractor:
    """``pointforge`` → the model at ``weights`` (None = the shipped default, a checkpoint or
    MagicLeap v1 weights) through :func:`pointforge.load_predictor`; an OpenCV method name →
    :class:`OpenCVExtractor`."""
    if method == "pointforge":
        from pointforge import load_predictor

        return load_predictor(
            weights,
            device=device,
            max_keypoints=max_keypoints,
            detection_threshold=detection_threshold,
            nms_radius=nms_radius,
            border=border,
        )
    return OpenCVExtractor(method, max_keypoints=max_keypoints, nms_radius=nms_radius)
