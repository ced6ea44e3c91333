"""``pointforge convert magicleap`` and ``pointforge match``: keypoint-model utilities.

Kept apart from :mod:`pointforge.cli.commands` so these subcommands register themselves
(:func:`add_parsers`) and ``main.py`` needs one line for them. Each command only parses and
calls the library (:mod:`pointforge.models.convert`, :mod:`pointforge.tasks.keypoints.matching`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def add_parsers(sub: Any) -> None:
    """Add the ``convert`` and ``match`` subparsers to ``sub`` (argparse subparsers)."""
    p = sub.add_parser("convert", help="import third-party weights")
    csub = p.add_subparsers(dest="convert_command", required=True, metavar="FORMAT")
    c = csub.add_parser(
        "magicleap",
        help="MagicLeap SuperPoint v1 state dict -> pointforge weights",
        description="Check every key and shape of SRC (MagicLeap's superpoint_v1.pth: conv1a "
        "... conv4b, convPa/Pb, convDa/Db, no BatchNorm) against the v1 layout and the "
        "pointforge superpoint model, then write DST as a pointforge weights file with the "
        "source's SHA-256 as provenance.",
    )
    c.add_argument("src", metavar="SRC.pth", help="MagicLeap v1 state dict")
    c.add_argument("dst", metavar="DST.pth", help="output pointforge weights file")
    c.set_defaults(func=cmd_convert_magicleap)

    p = sub.add_parser(
        "match",
        help="match two images and estimate a homography",
        description="Extract keypoints and descriptors from IMG1 and IMG2, match them by "
        "mutual nearest neighbour, estimate a homography with OpenCV RANSAC and write a "
        "side-by-side figure (inliers green, outliers red). Needs a model with a descriptor "
        "head (SuperPoint); prints the match and inlier counts and the estimated H.",
    )
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("image2", metavar="IMG2")
    p.add_argument("--weights", default=None, help="checkpoint (default: the shipped weights)")
    p.add_argument("--out", required=True, help="output PNG, e.g. match.png")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-keypoints", type=int, default=1000, help="per image (default 1000)")
    p.add_argument("--threshold", type=float, default=0.015, help="detection threshold")
    p.add_argument(
        "--ransac-threshold", type=float, default=3.0, help="RANSAC reprojection error, px"
    )
    p.add_argument(
        "--true-homography",
        default=None,
        metavar="H.txt",
        help="known 3x3 homography IMG1 -> IMG2 (text, 3 rows, or .npy): also print the mean "
        "corner error of the estimate, px (the homography-accuracy measure of DESIGN.md 4)",
    )
    p.set_defaults(func=cmd_match)


def cmd_convert_magicleap(args: argparse.Namespace) -> int:
    from pointforge.models.convert import convert_magicleap

    prov = convert_magicleap(args.src, args.dst)
    print(f"converted {args.src} (sha256 {prov['source_sha256']}) -> {args.dst}")
    return 0


def _read_image(path: str) -> np.ndarray:
    import cv2

    if not Path(path).is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read image {path} (not an image OpenCV can decode)")
    return image


def cmd_match(args: argparse.Namespace) -> int:
    from pointforge import DEFAULT_WEIGHTS, load_predictor
    from pointforge.tasks.keypoints.matching import draw_matches, match_features
    from pointforge.visualization import save_png

    if args.max_keypoints is not None and args.max_keypoints < 1:
        raise ValueError(f"--max-keypoints must be >= 1, got {args.max_keypoints}")
    if args.ransac_threshold <= 0:
        raise ValueError(f"--ransac-threshold must be > 0, got {args.ransac_threshold}")
    images = [_read_image(args.image1), _read_image(args.image2)]
    H_true = _read_homography(args.true_homography) if args.true_homography else None
    pred = load_predictor(
        args.weights,
        device=args.device,
        max_keypoints=args.max_keypoints,
        detection_threshold=args.threshold,
    )
    if not getattr(pred.model, "has_descriptor", False):
        weights = args.weights if args.weights is not None else DEFAULT_WEIGHTS
        raise ValueError(
            f"weights {weights} are a detector-only model (no descriptor head); matching needs "
            "descriptors: pass --weights with a SuperPoint checkpoint"
        )
    feats = [pred(im) for im in images]
    result = match_features(feats[0], feats[1], args.ransac_threshold)
    save_png(args.out, draw_matches(images[0], images[1], result))
    n1, n2 = len(result.keypoints1), len(result.keypoints2)
    print(f"keypoints: {n1} / {n2}")
    print(f"matches: {len(result.matches)}  inliers: {int(result.inliers.sum())}")
    if result.H is None:
        print("H: not estimated (fewer than 4 matches or no RANSAC model)")
    else:
        print("H (IMG1 -> IMG2):\n" + np.array2string(result.H, precision=6, suppress_small=True))
    if H_true is not None:
        from pointforge.evaluation.homography import corner_error

        err = corner_error(result.H, H_true, images[0].shape[:2]) if result.H is not None else None
        print(
            "corner error vs --true-homography: "
            + ("inf (no estimate)" if err is None else f"{err:.3f} px")
        )
    print(f"wrote {args.out}")
    return 0


def _read_homography(path: str) -> np.ndarray:
    """A 3x3 float64 matrix from ``.npy`` or whitespace-separated text; errors name the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"homography file not found: {path}")
    try:
        H = np.load(path) if path.endswith(".npy") else np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"cannot read a homography from {path}: {exc}") from None
    H = np.asarray(H, np.float64)
    if H.shape != (3, 3) or not np.isfinite(H).all():
        raise ValueError(f"{path} must hold a finite 3x3 matrix, got shape {H.shape}")
    return H
