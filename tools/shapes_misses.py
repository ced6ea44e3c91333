"""Which Synthetic Shapes test corners a detector misses, and why (README, MagicPoint section).

The AP of `pointforge eval configs/magicpoint_shapes.yaml` can never exceed the share of ground
truth it recalls (`<variant>/recall`). This splits the corners it never matches into
- *taken*: a detection lies within the match distance, but the greedy matching gave it to
  another corner of the same image (two corners inside one NMS window end up here);
- *undetected*: no detection within the match distance at all;
and, for the undetected ones, prints how faint they are: the grey-level standard deviation of
their 7×7 neighbourhood in the clean twin of the test image (the noisy set is the clean set
with the training photometric augmentation, same seed, same corners).

    python tools/shapes_misses.py --weights pointforge/weights/magicpoint_shapes.pth
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from pointforge.config import load_config
from pointforge.engine.launch import resolve_device
from pointforge.evaluation.keypoints import match_image
from pointforge.models.loading import read_state_dict
from pointforge.tasks.keypoints.evaluate import ShapesDetectionEvaluator
from pointforge.tasks.keypoints.predictor import build_model_for_state_dict

PATCH_RADIUS = 3  # 7×7 neighbourhood


def local_contrast(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Grey std of the ``(2r+1)²`` patch around each ``(K, 2)`` (x, y) point of ``(H, W)``."""
    h, w = image.shape
    out = np.empty(len(points))
    for i, (x, y) in enumerate(np.rint(points).astype(int)):
        x0, y0 = max(0, x - PATCH_RADIUS), max(0, y - PATCH_RADIUS)
        patch = image[y0 : min(h, y + PATCH_RADIUS + 1), x0 : min(w, x + PATCH_RADIUS + 1)]
        out[i] = patch.astype(np.float64).std()
    return out


@dataclass
class MissReport:
    """Corner counts (module docstring) and clean-image contrast: ``undetected_contrast (U,)``
    of the undetected corners, ``found_contrast (F,)`` of those with a detection in range."""

    ground_truth: int
    matched: int
    taken: int
    undetected_contrast: np.ndarray
    found_contrast: np.ndarray

    @property
    def undetected(self) -> int:
        return self.ground_truth - self.matched - self.taken


def classify_misses(
    detections: list[tuple[np.ndarray, np.ndarray]],
    ground_truth: list[np.ndarray],
    clean_images: list[np.ndarray],
    distance: float,
) -> MissReport:
    """Match as the AP does (``match_image``) and sort each image's unmatched corners."""
    total = matched = taken = 0
    faint: list[np.ndarray] = [np.zeros(0)]
    found: list[np.ndarray] = [np.zeros(0)]
    for (kpts, scores), gt, clean in zip(detections, ground_truth, clean_images, strict=True):
        if len(gt) == 0:
            continue
        tp, _ = match_image(kpts, scores, gt, distance)
        in_range = cdist(gt, kpts).min(axis=1) <= distance if len(kpts) else np.zeros(len(gt), bool)
        contrast = local_contrast(clean, gt)
        total += len(gt)
        matched += int(tp.sum())
        taken += int(in_range.sum()) - int(tp.sum())
        faint.append(contrast[~in_range])
        found.append(contrast[in_range])
    return MissReport(total, matched, taken, np.concatenate(faint), np.concatenate(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="pointforge/weights/magicpoint_shapes.pth")
    parser.add_argument("--config", default="configs/magicpoint_shapes.yaml")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. eval.num_images=200")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    evaluator = ShapesDetectionEvaluator(cfg)
    device = resolve_device(cfg.device)
    model = build_model_for_state_dict(read_state_dict(args.weights)).to(device).eval()
    clean_images, _ = evaluator.test_set("clean")
    for variant in evaluator.variants:
        images, gts = evaluator.test_set(variant)
        dets = evaluator.predict(model, images, device)
        r = classify_misses(dets, gts, clean_images, cfg.eval.distance)
        print(
            f"{variant}: {r.ground_truth} corners, matched {r.matched} "
            f"(recall {r.matched / max(r.ground_truth, 1):.3f}), taken by another corner "
            f"{r.taken}, undetected {r.undetected}"
        )
        if len(r.undetected_contrast) and len(r.found_contrast):
            print(
                f"  clean 7x7 grey std, median: undetected {np.median(r.undetected_contrast):.1f},"
                f" found {np.median(r.found_contrast):.1f}; undetected under 5: "
                f"{(r.undetected_contrast < 5).sum()}"
            )


if __name__ == "__main__":
    main()
