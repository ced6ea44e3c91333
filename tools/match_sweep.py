"""Corner error of `pointforge match` over a grid of known homographies, per weights file.

One warp of one photo is a single RANSAC fit and can fail by luck; this sweep gives the median
and the share of fits under 3 px over scikit-image photos and a grid of rotations, scales and
tilts (the warp of `tools/warp_photo.py`), so two weights files can be compared fairly:

    python tools/match_sweep.py --weights pointforge/weights/superpoint.pth \
        --weights OTHER.pth [--scales 1 0.7071 0.5]
"""

from __future__ import annotations

import argparse
import itertools

import cv2
import numpy as np
import skimage.data
from warp_photo import known_homography  # tools/ is the script's own folder

from pointforge import load_predictor
from pointforge.evaluation.homography import corner_error
from pointforge.tasks.keypoints.matching import match_features

PHOTOS = ("camera", "astronaut", "coffee")
ANGLES = (5.0, 15.0, 25.0, 35.0)
SCALES = (0.8, 1.0)
TILTS = (0.0, 1e-4)


def grey(name: str) -> np.ndarray:
    img = getattr(skimage.data, name)()
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def sweep(weights: str, scales: tuple[float, ...]) -> np.ndarray:
    """Corner errors (px; inf where no homography was found), one per photo and warp."""
    pred = load_predictor(weights, device="auto", scales=scales)
    errors = []
    for name in PHOTOS:
        img = grey(name)
        h, w = img.shape
        feats = pred(img)
        for angle, scale, tilt in itertools.product(ANGLES, SCALES, TILTS):
            H = known_homography(h, w, angle, scale, tilt)
            result = match_features(feats, pred(cv2.warpPerspective(img, H, (w, h))), 3.0)
            errors.append(np.inf if result.H is None else corner_error(result.H, H, (h, w)))
    return np.array(errors)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weights", action="append", required=True, help="weights (repeatable)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0], help="detection scales")
    args = p.parse_args()
    n = len(PHOTOS) * len(ANGLES) * len(SCALES) * len(TILTS)
    print(f"{n} warps: {', '.join(PHOTOS)} x angles {ANGLES} x scales {SCALES} x tilts {TILTS}")
    for weights in args.weights:
        e = sweep(weights, tuple(args.scales))
        finite = e[np.isfinite(e)].mean()
        print(
            f"{weights}: median {np.median(e):.2f} px, mean of finite {finite:.2f} px, "
            f"under 3 px {np.mean(e < 3):.2f}, failed {int(np.isinf(e).sum())}"
        )


if __name__ == "__main__":
    main()
