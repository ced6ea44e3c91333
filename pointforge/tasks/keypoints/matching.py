"""Match two images: extract → mutual nearest neighbours → RANSAC homography → drawing.

Why mutual nearest neighbours: it is the matcher of the SuperPoint protocol
(docs/evaluation.md), needs no ratio threshold, and is one distance matrix plus two argmins.
The matcher itself is :func:`pointforge.evaluation.homography.mutual_nn`, shared with the homography
benchmark so ``pointforge match`` and the benchmark cannot disagree on what a match is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pointforge.evaluation.homography import mutual_nn

# cv2.findHomography needs at least this many correspondences.
MIN_MATCHES_FOR_H = 4
# When an estimate is trusted: COLMAP's two-view geometry defaults (TwoViewGeometryOptions:
# min_num_inliers = 15, and its RANSAC min_inlier_ratio = 0.25). With fewer inliers RANSAC
# "succeeds" on unrelated images too: 4 random matches always fit a homography exactly, and
# mutual-NN matching of two unrelated photos leaves ~10 % of matches consistent by chance
# (5 of 46 for two unrelated scikit-image photos, issue 11).
MIN_RELIABLE_INLIERS = 15
MIN_RELIABLE_INLIER_RATIO = 0.25
INLIER_BGR = (0, 200, 0)
OUTLIER_BGR = (0, 0, 255)
KEYPOINT_BGR = (0, 255, 255)  # yellow: visible on grey and on most photos
LEGEND_HEIGHT = 22


@dataclass
class MatchResult:
    """Keypoints ``(N1, 2)``/``(N2, 2)`` (x, y); ``matches`` ``(M, 2)`` index pairs into them;
    ``inliers`` ``(M,)`` bool RANSAC mask; ``H`` ``(3, 3)`` mapping image 1 → 2, or None when
    fewer than 4 matches exist or RANSAC found no model (then no match is an inlier)."""

    keypoints1: np.ndarray
    keypoints2: np.ndarray
    matches: np.ndarray
    inliers: np.ndarray
    H: np.ndarray | None

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())

    @property
    def inlier_ratio(self) -> float:
        """Inliers / matches (0 without matches)."""
        return self.num_inliers / len(self.matches) if len(self.matches) else 0.0

    @property
    def reliable(self) -> bool:
        """Whether ``H`` meets :data:`MIN_RELIABLE_INLIERS` and
        :data:`MIN_RELIABLE_INLIER_RATIO`; an unreliable ``H`` is likely chance."""
        return (
            self.H is not None
            and self.num_inliers >= MIN_RELIABLE_INLIERS
            and self.inlier_ratio >= MIN_RELIABLE_INLIER_RATIO
        )

    def summary(self) -> str:
        """One line with the counts, e.g. ``"120 matches, 98 inliers (82 %)"``, plus
        ``"no reliable homography"`` when :attr:`reliable` is false."""
        text = (
            f"{len(self.matches)} matches, {self.num_inliers} inliers "
            f"({100 * self.inlier_ratio:.0f} %)"
        )
        return text if self.reliable else f"{text}: no reliable homography"


def match_descriptors(desc1: np.ndarray, desc2: np.ndarray) -> np.ndarray:
    """Mutual-NN index pairs ``(M, 2)`` int64 for descriptors ``(N1, D)`` and ``(N2, D)``."""
    if desc1.ndim != 2 or desc2.ndim != 2 or desc1.shape[1] != desc2.shape[1]:
        raise ValueError(
            f"descriptors must be (N1, D) and (N2, D) with the same D, got {desc1.shape} "
            f"and {desc2.shape}"
        )
    # float64: the shared matcher's one-GEMM distance |a|² + |b|² − 2a·b cancels in float32 to
    # ~1e-3 absolute error, which swaps near-duplicate descriptors (neighbouring keypoints of
    # weakly trained models lie ~1e-4 apart); float64 costs a few ms at 1000 × 1000 × 256.
    pairs = mutual_nn(torch.from_numpy(desc1).double(), torch.from_numpy(desc2).double())
    return pairs.numpy().astype(np.int64)


def estimate_homography(
    points1: np.ndarray, points2: np.ndarray, ransac_threshold: float = 3.0
) -> tuple[np.ndarray | None, np.ndarray]:
    """OpenCV RANSAC homography from ``(M, 2)`` correspondences: ``(H or None, inliers (M,))``."""
    inliers = np.zeros(len(points1), bool)
    if len(points1) < MIN_MATCHES_FOR_H:
        return None, inliers
    H, mask = cv2.findHomography(
        points1.astype(np.float64), points2.astype(np.float64), cv2.RANSAC, ransac_threshold
    )
    if H is None or mask is None:
        return None, inliers
    return H, mask.ravel().astype(bool)


def match_features(
    feats1: dict[str, np.ndarray | None],
    feats2: dict[str, np.ndarray | None],
    ransac_threshold: float = 3.0,
) -> MatchResult:
    """Match two predictor outputs (``keypoints``, ``descriptors``); descriptors are required."""
    d1, d2 = feats1["descriptors"], feats2["descriptors"]
    if d1 is None or d2 is None:
        raise ValueError(
            "matching needs descriptors; these features come from a detector-only model"
        )
    k1, k2 = np.asarray(feats1["keypoints"]), np.asarray(feats2["keypoints"])
    matches = match_descriptors(d1, d2)
    H, inliers = estimate_homography(k1[matches[:, 0]], k2[matches[:, 1]], ransac_threshold)
    return MatchResult(k1, k2, matches, inliers, H)


def draw_matches(image1: np.ndarray, image2: np.ndarray, result: MatchResult) -> np.ndarray:
    """Side-by-side BGR uint8 canvas ``(LEGEND_HEIGHT + max(H1, H2), W1 + W2, 3)``.

    Colour inputs stay in colour (grey ones are replicated). A legend band on top gives the
    counts (:meth:`MatchResult.summary`, in red when the homography is not reliable); keypoints
    are yellow dots with a dark rim so they show on any background; inlier matches are green
    lines and outliers red ones (inliers drawn last, on top).
    """
    bgr = [cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else im for im in (image1, image2)]
    (h1, w1), (h2, w2) = bgr[0].shape[:2], bgr[1].shape[:2]
    top = LEGEND_HEIGHT
    canvas = np.zeros((top + max(h1, h2), w1 + w2, 3), np.uint8)
    canvas[top : top + h1, :w1], canvas[top : top + h2, w1:] = bgr[0], bgr[1]
    legend_colour = (255, 255, 255) if result.reliable else OUTLIER_BGR
    cv2.putText(
        canvas,
        result.summary(),
        (4, top - 7),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        legend_colour,
        1,
        cv2.LINE_AA,
    )
    shift = 4  # sub-pixel endpoints: OpenCV fixed-point coordinates with 4 fractional bits
    offset = np.array([w1, 0], np.float64)
    down = np.array([0, top], np.float64)

    def fixed(p: np.ndarray) -> np.ndarray:
        return np.round((np.asarray(p, np.float64) + down) * (1 << shift)).astype(np.int64)

    for x, y in np.concatenate([fixed(result.keypoints1), fixed(result.keypoints2 + offset)]):
        centre = (int(x), int(y))
        cv2.circle(canvas, centre, 3 << shift, (0, 0, 0), -1, cv2.LINE_AA, shift)
        cv2.circle(canvas, centre, 2 << shift, KEYPOINT_BGR, -1, cv2.LINE_AA, shift)
    p1 = fixed(result.keypoints1[result.matches[:, 0]])
    p2 = fixed(result.keypoints2[result.matches[:, 1]] + offset)
    for keep, colour in ((~result.inliers, OUTLIER_BGR), (result.inliers, INLIER_BGR)):
        for a, b in zip(p1[keep], p2[keep], strict=True):
            cv2.line(
                canvas,
                (int(a[0]), int(a[1])),
                (int(b[0]), int(b[1])),
                colour,
                1,
                cv2.LINE_AA,
                shift,
            )
    return canvas
