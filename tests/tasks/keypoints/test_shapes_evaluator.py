"""The Synthetic Shapes AP protocol: corners at the image edge count (no border removal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import pointforge
from pointforge.config.loader import load_config
from pointforge.evaluation.keypoints import detection_ap
from pointforge.predictor import load_model
from pointforge.tasks.keypoints.evaluate import ShapesDetectionEvaluator

CONFIG = str(Path(__file__).parents[3] / "configs" / "magicpoint_shapes.yaml")
EDGE = 4.0


def _near_edge(points: np.ndarray, h: int, w: int) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    return (x < EDGE) | (y < EDGE) | (x > w - 1 - EDGE) | (y > h - 1 - EDGE)


def test_edge_corners_are_detectable_only_without_a_border() -> None:
    model, _, _ = load_model(pointforge.MAGICPOINT_WEIGHTS)
    model.eval()
    device = torch.device("cpu")
    scores = {}
    for border in (0, 4):
        cfg = load_config(CONFIG, ["eval.num_images=120", f"eval.border={border}"])
        ev = ShapesDetectionEvaluator(cfg)
        images, gts = ev.test_set("clean")
        h, w = images[0].shape
        dets = ev.predict(model, images, device)
        edge_dets = sum(int(_near_edge(k, h, w).sum()) for k, _ in dets)
        scores[border] = (detection_ap(dets, gts)["ap"], edge_dets)
        # Some ground-truth corners lie at the edge (line ends, stripes, checkerboard cells).
        assert sum(int(_near_edge(g, h, w).sum()) for g in gts) > 10
    assert ShapesDetectionEvaluator(load_config(CONFIG)).cfg.eval.border == 0  # the default
    assert scores[4][1] == 0 and scores[0][1] > 10
    # The shipped detector finds edge corners, so removing a border costs it AP.
    assert scores[0][0] > scores[4][0] + 0.01


def test_recall_is_the_ceiling_of_the_ap() -> None:
    """``<variant>/recall`` is the share of GT points found at all, which bounds the AP."""
    model, _, _ = load_model(pointforge.MAGICPOINT_WEIGHTS)
    model.eval()
    device = torch.device("cpu")
    overrides = ["eval.num_images=40", "eval.baselines=[]", "eval.num_visualize=0"]
    ev = ShapesDetectionEvaluator(load_config(CONFIG, overrides))
    results = ev.evaluate(model, device)
    for variant in ("clean", "noisy"):
        assert 0.5 < results[f"{variant}/ap"] <= results[f"{variant}/recall"] <= 1.0
    images, gts = ev.test_set("noisy")
    n_gt = sum(len(g) for g in gts)
    found = detection_ap(ev.predict(model, images, device), gts)["num_true_positives"] / n_gt
    assert results["noisy/recall"] == found
    # A stricter threshold finds fewer corners: the ceiling moves with the detection threshold.
    strict = ev.predict(model, images, device, threshold=0.3)
    assert detection_ap(strict, gts)["num_true_positives"] / n_gt < found
