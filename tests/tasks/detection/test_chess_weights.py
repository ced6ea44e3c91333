"""The shipped chess weights on the chess photos they never saw: the source repository's
``test`` split (29 photos, 376 pieces; ../shared/data/chess/test), which neither training nor
the choice of recipe looked at (the recipe was compared on ``valid``). Scored with the
project's COCO evaluator through the public ``load_predictor`` path, against an untrained
network of the same architecture.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pointforge
from pointforge.predictor import stored_config
from pointforge.tasks.detection.coco_eval import COCOEvaluator
from pointforge.tasks.detection.data.chess import ANNOTATION_FILE
from pointforge.tasks.detection.model import CenterNet
from pointforge.tasks.detection.task import CenterNetTask

WEIGHTS = Path(pointforge.__file__).resolve().parent / "weights" / "centernet_chess.pth"
# Measured for the shipped file on the 29 test photos: see centernet_chess.json and the
# README (AP 0.673 / AP50 0.960); an untrained network scores ~0.
AP50_TRAINED = 0.85
AP50_FRESH = 0.01
pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="centernet_chess.pth is missing")


def ap_on_test_split(pred, gt: dict, folder: Path) -> dict[str, float]:
    """COCO box AP of ``pred`` on every photo of ``gt`` (boxes already in photo pixels)."""
    evaluator = COCOEvaluator(gt, category_ids=[cid for cid, _ in sorted(pred.categories.items())])
    index = {cid: i for i, cid in enumerate(evaluator.category_ids)}
    for image in gt["images"]:
        bgr = cv2.imread(str(folder / image["file_name"]), cv2.IMREAD_COLOR)
        out = pred(bgr)
        labels = torch.tensor([index[int(c)] for c in out["labels"]], dtype=torch.int64)
        evaluator.process(
            {"image_id": [image["id"]]},
            {
                "boxes": torch.from_numpy(out["boxes"])[None],
                "scores": torch.from_numpy(out["scores"])[None],
                "labels": labels[None],
            },
        )
    return evaluator.evaluate()


def test_shipped_chess_weights_on_unseen_test_photos(shared_data: Callable[[str], Path]) -> None:
    assert WEIGHTS.stat().st_size < 50e6
    test_split = shared_data("chess") / "test"
    gt = json.loads((test_split / ANNOTATION_FILE).read_text())
    trained = pointforge.load_predictor(WEIGHTS, device="cpu", score_threshold=0.0)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    assert trained.categories == names  # the 12 piece classes travel with the weights
    torch.manual_seed(0)
    untrained = CenterNet(len(names))
    untrained.set_categories(sorted(names.items()))
    fresh = CenterNetTask.build_predictor(
        untrained, stored_config(WEIGHTS), "cpu", score_threshold=0.0
    )
    m_trained, m_fresh = (
        ap_on_test_split(trained, gt, test_split),
        ap_on_test_split(fresh, gt, test_split),
    )
    assert m_trained["bbox/AP50"] >= AP50_TRAINED, m_trained
    assert m_fresh["bbox/AP50"] <= AP50_FRESH, m_fresh
    assert np.isfinite(m_trained["bbox/AP"]) and m_trained["bbox/AP"] < m_trained["bbox/AP50"]
