"""``pointforge detect``, ``convert magicleap`` and ``match``: keypoint-model utilities.

Kept apart from :mod:`pointforge.cli.commands` so these subcommands register themselves
(:func:`add_parsers`) and ``main.py`` needs one line for them. Each command only parses and
calls the library (:mod:`pointforge.models.convert`, :mod:`pointforge.tasks.keypoints.matching`).
Images are read by :func:`pointforge.data.image_io.read_image` in colour and turned grey by the
predictor, so ``detect`` and ``match`` see the same grey image (one conversion path) and a
truncated file is refused by name. Heavy modules (torch, OpenCV) are imported inside the
commands so that ``pointforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

BAD_IMAGE_POLICIES = ("error", "skip")


def _add_predictor_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``detect`` and ``match`` (the predictor's; defaults are its own)."""
    p.add_argument(
        "--weights",
        default=None,
        help="checkpoint or MagicLeap-v1 state dict; the package ships "
        "pointforge/weights/superpoint.pth (the default) and superpoint_lite.pth beside it "
        "(~6.5x faster on a CPU, faster than SIFT with --precision bf16; "
        "README, 'SuperPoint-Lite')",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--max-keypoints", type=int, default=1000, help="most keypoints per image")
    p.add_argument(
        "--threshold", type=float, default=0.015, help="detection threshold on the heatmap"
    )
    p.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        metavar="S",
        help="image scales whose heatmaps are averaged (must include 1; e.g. 1 0.5: points "
        "that also respond at half size, more repeatable under zoom, ~1.25x the compute)",
    )
    p.add_argument(
        "--subpixel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move keypoints off the pixel grid to a Gaussian fitted through each heatmap peak "
        "(more accurate homographies); --no-subpixel gives the published integer keypoints",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="the network's arithmetic; bf16 about halves the CPU time on processors with "
        "AVX-512 BF16, at a small accuracy cost (docs/keypoints.md, 'Speed on CPU')",
    )


def add_parsers(sub: Any) -> None:
    """Add the ``detect``, ``convert`` and ``match`` subparsers to ``sub``."""
    defaults = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser(
        "detect",
        help="run a model (keypoints, boxes, ...) on images and save the results to .npz",
        formatter_class=defaults,
        description="Run the predictor of --weights (any task: read from the checkpoint) on "
        "IMAGE files; writes one .npz with <stem>/<field> for every array it returns: for "
        "keypoint models <stem>/keypoints (N, 2) (x, y), <stem>/scores (N,) and, for "
        "SuperPoint, <stem>/descriptors (N, D); for box detectors <stem>/boxes (N, 4) xyxy, "
        "scores, labels. The keypoint options apply to keypoint models only. An empty, "
        "truncated or undecodable image is named; the results of every image read before it "
        "are still written.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True, help="output .npz file")
    _add_predictor_args(p)
    p.add_argument("--nms-radius", type=int, default=4, help="non-maximum suppression radius, px")
    p.add_argument("--border", type=int, default=4, help="drop keypoints this close to the edge")
    p.add_argument(
        "--on-bad-image",
        choices=BAD_IMAGE_POLICIES,
        default="error",
        help="error: stop at the first unreadable image (exit 2; the results before it are "
        "written); skip: leave it out, list it and go on",
    )
    p.add_argument(
        "--draw",
        default=None,
        metavar="DIR",
        help="also write <DIR>/<stem>.png with the keypoints drawn",
    )
    p.add_argument(
        "--intrinsics",
        default=None,
        metavar="K",
        help="3D detectors (centerfusion): the 3x3 camera matrix of the IMAGEs (.npy or text, "
        "3 rows); <stem>/center, size, rot_y, velocity are then camera-frame 3D boxes",
    )
    p.add_argument(
        "--radar",
        nargs="+",
        default=None,
        metavar="R.npy",
        help="radar-camera fusion weights: one (N, 9) camera-frame radar array per IMAGE, in "
        "the same order (docs/fusion.md)",
    )
    p.set_defaults(func=cmd_detect)

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
        formatter_class=defaults,
        description="Extract keypoints and descriptors from IMG1 and IMG2, match them by "
        "mutual nearest neighbour, estimate a homography with OpenCV RANSAC and write a "
        "side-by-side figure (inliers green, outliers red, counts in a legend). Needs a model "
        "with a descriptor head (SuperPoint); prints the match and inlier counts and the "
        "estimated H, and warns 'no reliable homography' when there are fewer than 15 "
        "inliers or the inlier ratio is below 0.25 (COLMAP's two-view defaults).",
    )
    p.add_argument("image1", metavar="IMG1")
    p.add_argument("image2", metavar="IMG2")
    p.add_argument("--out", required=True, help="output PNG, e.g. match.png")
    _add_predictor_args(p)
    p.add_argument(
        "--ransac-threshold", type=float, default=3.0, help="RANSAC reprojection error, px"
    )
    p.add_argument(
        "--true-homography",
        default=None,
        metavar="H.txt",
        help="known 3x3 homography IMG1 -> IMG2 (text, 3 rows, or .npy): also print the mean "
        "corner error of the estimate, px (the homography-accuracy measure of docs/evaluation.md)",
    )
    p.set_defaults(func=cmd_match)


def cmd_convert_magicleap(args: argparse.Namespace) -> int:
    from pointforge.models.convert import convert_magicleap

    prov = convert_magicleap(args.src, args.dst)
    print(f"converted {args.src} (sha256 {prov['source_sha256']}) -> {args.dst}")
    return 0


def _check_predictor_args(args: argparse.Namespace) -> None:
    if args.max_keypoints is not None and args.max_keypoints < 1:
        raise ValueError(f"--max-keypoints must be >= 1, got {args.max_keypoints}")


def cmd_detect(args: argparse.Namespace) -> int:
    """Run the predictor of any task's weights on every IMAGE (keypoints, boxes, ...); the
    ``.npz`` holds every array of every image read, whatever the policy. Options a task's
    predictor does not take (the keypoint ones for a box detector) are left out."""
    from pointforge import DEFAULT_WEIGHTS
    from pointforge.data.image_io import UnreadableImageError, read_image
    from pointforge.predictor import open_predictor
    from pointforge.visualization import save_png

    _check_predictor_args(args)
    options = {
        "max_keypoints": args.max_keypoints,
        "detection_threshold": args.threshold,
        "nms_radius": args.nms_radius,
        "border": args.border,
        "scales": tuple(args.scales),
        "subpixel": args.subpixel,
        "precision": args.precision,
    }
    weights = args.weights or DEFAULT_WEIGHTS
    pred, task = open_predictor(weights, args.device, options, only_accepted=True)
    scene = _scene_inputs(args, pred)
    arrays: dict[str, np.ndarray] = {}
    failed: list[UnreadableImageError] = []
    for index, path in enumerate(args.images):
        try:
            image = read_image(path)  # BGR; the predictor makes it grey, as in ``match``
        except UnreadableImageError as exc:
            failed.append(exc)
            if args.on_bad_image == "error":
                break
            print(f"{path}: skipped: {exc.reason}")
            continue
        out = pred(image, **scene(index))
        stem = Path(path).stem
        if stem in {k.split("/")[0] for k in arrays}:
            stem = str(Path(path)).replace("/", "_")
        fields = {k: v for k, v in out.items() if isinstance(v, np.ndarray)}
        arrays.update({f"{stem}/{k}": v for k, v in fields.items()})
        first = next(iter(fields), None)  # keypoints, boxes, ...: what was found
        found = f"{len(fields[first])} {first}" if first is not None else "done"
        print(f"{path}: {found}")
        if args.draw:
            save_png(Path(args.draw) / f"{stem}.png", task.draw(image, out))
    done = len({k.split("/")[0] for k in arrays})
    out_path = Path(args.out)
    if done:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out_path, allow_pickle=False, **arrays)  # numeric arrays only
        print(f"wrote {out_path} ({done} of {len(args.images)} images)")
    if failed and args.on_bad_image == "error":
        rest = len(args.images) - done - 1
        written = f"the {done} image(s) before it are in {out_path}" if done else "nothing written"
        raise UnreadableImageError(
            failed[0].path,
            f"{failed[0].reason} ({written}; {rest} not processed; "
            "--on-bad-image skip leaves bad images out)",
        )
    if failed:
        print(
            f"skipped {len(failed)} unreadable image(s): " + ", ".join(str(e.path) for e in failed)
        )
    if not done:
        raise ValueError(f"none of the {len(args.images)} images could be read; nothing written")
    return 0


def _scene_inputs(args: argparse.Namespace, pred: Any) -> Any:
    """``index -> keyword inputs`` of the predictor besides the image: the camera matrix and
    the image's radar array for a radar-camera (3D) predictor, nothing for the others. Refuses
    ``--intrinsics``/``--radar`` where the predictor takes no such input, and a radar list
    whose length is not the number of images."""
    import inspect

    takes = set(inspect.signature(pred.__call__).parameters)
    given = {"--intrinsics": args.intrinsics is not None, "--radar": args.radar is not None}
    for flag, name in (("--intrinsics", "intrinsics"), ("--radar", "radar")):
        if given[flag] and name not in takes:
            raise ValueError(f"{flag} applies to 3D (radar-camera) weights; these take no {name}")
    if "intrinsics" in takes and not given["--intrinsics"]:
        raise ValueError("these are 3D detection weights: pass --intrinsics K (3x3 camera matrix)")
    if args.radar is not None and len(args.radar) != len(args.images):
        raise ValueError(
            f"--radar needs one array per IMAGE: got {len(args.radar)} for "
            f"{len(args.images)} images"
        )
    k = _read_homography(args.intrinsics, "camera matrix") if args.intrinsics else None
    radar = [_read_radar(r) for r in args.radar] if args.radar is not None else None

    def inputs(index: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if k is not None:
            out["intrinsics"] = k
        if radar is not None:
            out["radar"] = radar[index]
        return out

    return inputs


def _read_radar(path: str) -> np.ndarray:
    """An (N, C >= 6) float32 radar array from ``.npy`` (docs/fusion.md's camera-frame rows);
    errors name the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"radar file not found: {path}")
    try:
        r = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"cannot read a radar array from {path}: {exc}") from None
    if r.ndim != 2 or r.shape[1] < 6 or not np.isfinite(r).all():
        raise ValueError(f"{path} must hold a finite (N, 9) radar array, got shape {r.shape}")
    return np.asarray(r, np.float32)


def cmd_match(args: argparse.Namespace) -> int:
    import sys

    from pointforge import DEFAULT_WEIGHTS, load_predictor
    from pointforge.data.image_io import read_image
    from pointforge.tasks.keypoints.matching import (
        MIN_RELIABLE_INLIER_RATIO,
        MIN_RELIABLE_INLIERS,
        draw_matches,
        match_features,
    )
    from pointforge.visualization import save_png

    _check_predictor_args(args)
    if args.ransac_threshold <= 0:
        raise ValueError(f"--ransac-threshold must be > 0, got {args.ransac_threshold}")
    # Colour as read (BGR): the figure stays in colour, and the predictor turns it grey exactly
    # as ``detect`` does, so both find the same keypoints.
    images = [read_image(args.image1), read_image(args.image2)]
    H_true = _read_homography(args.true_homography) if args.true_homography else None
    pred = load_predictor(
        args.weights,
        device=args.device,
        max_keypoints=args.max_keypoints,
        detection_threshold=args.threshold,
        scales=tuple(args.scales),
        subpixel=args.subpixel,
        precision=args.precision,
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
    print(
        f"matches: {len(result.matches)}  inliers: {result.num_inliers}  "
        f"inlier ratio: {result.inlier_ratio:.2f}"
    )
    if result.H is None:
        print("H: not estimated (fewer than 4 matches or no RANSAC model)")
    elif not result.reliable:
        print(
            f"warning: no reliable homography: {result.num_inliers} inliers of "
            f"{len(result.matches)} matches (ratio {result.inlier_ratio:.2f}); a reliable "
            f"estimate needs >= {MIN_RELIABLE_INLIERS} inliers and a ratio >= "
            f"{MIN_RELIABLE_INLIER_RATIO}. The images may not show the same planar scene.",
            file=sys.stderr,
        )
        print(
            "H (IMG1 -> IMG2, unreliable):\n"
            + np.array2string(result.H, precision=6, suppress_small=True)
        )
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


def _read_homography(path: str, what: str = "homography") -> np.ndarray:
    """A 3x3 float64 matrix (a homography, or the camera matrix of ``detect --intrinsics``)
    from ``.npy`` or whitespace-separated text; errors name the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        H = np.load(path) if path.endswith(".npy") else np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"cannot read a {what} from {path}: {exc}") from None
    H = np.asarray(H, np.float64)
    if H.shape != (3, 3) or not np.isfinite(H).all():
        raise ValueError(f"{path} must hold a finite 3x3 matrix, got shape {H.shape}")
    return H
