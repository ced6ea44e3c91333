"""The VOC reader on a real set: the playing-card photos of ../shared/data/cards_voc (LabelImg
xml in VOC layout, 296 train / 67 test photos of three sizes, 6 classes). Skipped, with its
reason, where that folder is absent (a user's clone)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pointforge.tasks.detection.data import VocParams, VocSplit, build_voc

CLASSES = ["ace", "jack", "king", "nine", "queen", "ten"]


def test_voc_reader_on_the_card_photos(shared_data: Callable[[str], Path]) -> None:
    root = str(shared_data("cards_voc"))
    params = VocParams(train=VocSplit(root, "train"), val=VocSplit(root, "test"))
    train, test = build_voc(params, "train"), build_voc(params, "val")
    assert (len(train), len(test)) == (296, 67)
    # The class list comes from the training xml files, shared by both splits.
    assert train.class_names == test.class_names == CLASSES
    assert train.skipped == test.skipped == {"bad_annotation": 0, "bad_image": 0}
    by_stem = {Path(r.path).stem: (i, r) for i, r in enumerate(train.records)}
    # IMG_2610.xml: five cards; its first two boxes, 1-based corners (56, 322, 188, 497) and
    # (309, 21, 378, 159), the second touching the right border of the 378 px wide photo.
    i, rec = by_stem["IMG_2610"]
    assert (rec.width, rec.height) == (378, 504) and len(rec.boxes) == 5
    np.testing.assert_array_equal(rec.boxes[:2], [[55, 321, 188, 497], [308, 20, 378, 159]])
    assert [CLASSES[c] for c in rec.labels[:2]] == ["jack", "jack"]
    for ds, index in ((train, i), (test, 0)):
        rgb, rec = ds.load(index)  # decoded: the annotated size is the photo's
        h, w = rgb.shape[:2]
        assert (h, w) == (rec.height, rec.width) and len(rec.boxes) > 0
        assert (rec.boxes[:, :2] >= 0).all() and (rec.boxes[:, 2] <= w).all()
        assert (rec.boxes[:, 3] <= h).all() and (rec.boxes[:, 2:] > rec.boxes[:, :2]).all()
    # Through the val transform (letterbox to 384x384) the boxes stay inside the input.
    s = test[0]
    assert s["image"].shape == (3, 384, 384) and len(s["boxes"]) > 0
    assert torch.all(s["boxes"] >= 0) and torch.all(s["boxes"] <= 384)
