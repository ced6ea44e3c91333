"""The shipped shapes weights: they load with ``load_predictor`` alone (no dataset), find the
objects of held-out shapes images, and their COCO AP is the same whether ``pointforge eval``
runs in one process or in 2 gloo ranks whose predictions are gathered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

import pointforge
from pointforge.predictor import stored_config
from pointforge.tasks.detection.data.shapes import SHAPE_CLASSES, ShapesDetection
from pointforge.tasks.detection.model import CenterNet
from pointforge.tasks.detection.task import CenterNetTask

WEIGHTS = Path(pointforge.__file__).resolve().parent / "weights" / "centernet_shapes.pth"
# Recall@100 (IoU 0.5, same class) on these 8 held-out images: 1.0 measured for the shipped
# file (1,500 CPU steps at 128x128 with backbone shortcuts, AP 0.719 / AP50 0.925 on 200
# held-out images, see centernet_shapes.json), 0.0 for an untrained network of the same
# architecture.
RECALL_TRAINED = 0.9
RECALL_FRESH = 0.05
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"{WEIGHTS.name} is not shipped")


def recall_at_half_iou(pred: Any, val: ShapesDetection) -> float:
    """Fraction of the ground-truth boxes of ``val`` matched by one of the top-100 detections
    of their class at IoU >= 0.5."""
    found = total = 0
    for i in range(len(val)):
        rgb, boxes, labels, _ = val.render(i)
        out = pred(np.ascontiguousarray(rgb[..., ::-1]))
        assert np.all(np.diff(out["scores"]) <= 0)
        assert out["class_names"] == [SHAPE_CLASSES[c - 1] for c in out["labels"]]
        iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(out["boxes"]))  # (K, N)
        same = torch.from_numpy(labels + 1)[:, None] == torch.from_numpy(out["labels"])[None]
        found += int(((iou >= 0.5) & same).any(1).sum())
        total += len(boxes)
    return found / total


def test_shipped_weights_find_held_out_shapes() -> None:
    assert WEIGHTS.stat().st_size < 50e6
    trained = pointforge.load_predictor(WEIGHTS, device="cpu", score_threshold=0.0)
    assert trained.categories == {i + 1: n for i, n in enumerate(SHAPE_CLASSES)}
    torch.manual_seed(0)
    untrained = CenterNet(len(SHAPE_CLASSES))
    untrained.set_categories(list(trained.categories.items()))
    fresh = CenterNetTask.build_predictor(
        untrained, stored_config(WEIGHTS), "cpu", score_threshold=0.0
    )
    # The held-out split (indices from 1e6, never trained on) as configs/centernet_shapes.yaml
    # renders it.
    val = ShapesDetection("val", 8, image_size=(128, 128), size_range=(12, 60), max_objects=6)
    r_trained, r_fresh = recall_at_half_iou(trained, val), recall_at_half_iou(fresh, val)
    assert r_trained >= RECALL_TRAINED and r_fresh <= RECALL_FRESH, (r_trained, r_fresh)


def test_eval_on_two_ranks_gathers_to_the_single_process_ap(tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(
        "task: centernet\n"
        "device: cpu\n"
        "model: {skip_connections: true}\n"  # the shipped file's architecture
        # 5 images: the 2 ranks get 3 and 2, so a per-rank mean would weigh images unequally.
        "data: {name: shapes_detection, num_val: 5, num_train: 8, batch_size: 2,"
        " num_workers: 0, image_size: [128, 128], min_size: 12, max_size: 60, max_objects: 6}\n"
        "train: {progress_bar: false}\n"
    )
    base = [sys.executable, "-m", "pointforge", "eval", str(config), "--weights", str(WEIGHTS)]
    one = subprocess.run(
        [*base, "--output-dir", str(tmp_path / "one")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    two = subprocess.run(
        [*torchrun, "--nproc-per-node", "2", *base[1:], "--output-dir", str(tmp_path / "two")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    m1 = json.loads((tmp_path / "one" / "eval" / "metrics.json").read_text())["metrics"]
    m2 = json.loads((tmp_path / "two" / "eval" / "metrics.json").read_text())["metrics"]
    assert m1["bbox/AP50"] > 0.0  # real detections, so equality is not 0 == 0
    assert m1.keys() == m2.keys()
    for key in m1:
        assert m1[key] == pytest.approx(m2[key], abs=1e-12, nan_ok=True), key
