"""The procedural shapes set (deterministic, boxes bound the primitives' pixels, COCO dump
round-trips) and the real chess photos of ../shared/data/chess (all images load, 12 classes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from pointforge.tasks.detection.data import (
    SHAPE_CLASSES,
    ChessParams,
    CocoDetection,
    ShapesDetection,
    ShapesParams,
    build_chess,
    build_shapes,
    dump_shapes_coco,
)


def test_shapes_deterministic_and_splits_disjoint() -> None:
    a, b = ShapesDetection("train", 8, seed=3), ShapesDetection("train", 8, seed=3)
    for i in (0, 5):
        ia, ib = a[i], b[i]
        torch.testing.assert_close(ia["image"], ib["image"])
        torch.testing.assert_close(ia["boxes"], ib["boxes"])
    assert not torch.equal(a[0]["image"], a[1]["image"])
    val = ShapesDetection("val", 8, seed=3)
    assert not torch.equal(a[0]["image"], val[0]["image"])
    assert {r.image_id for r in a.records}.isdisjoint(r.image_id for r in val.records)
    assert not torch.equal(a[0]["image"], ShapesDetection("train", 8, seed=4)[0]["image"])


def test_shapes_boxes_bound_their_primitives() -> None:
    ds = ShapesDetection("train", 12, seed=0)
    sizes, classes = [], set()
    for i in range(len(ds)):
        image, boxes, labels, masks = ds.render(i)
        assert image.shape == (128, 128, 3) and len(boxes) >= 1
        for box, mask in zip(boxes, masks):
            ys, xs = np.nonzero(mask)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            # The visible pixels are exactly one colour (no anti-aliasing), the object's.
            assert len(np.unique(image[mask], axis=0)) == 1
            sizes.append(max(box[2] - box[0], box[3] - box[1]))
        classes.update(labels.tolist())
        assert not (masks.sum(0) > 1).any()  # visible masks do not overlap
    assert classes <= set(range(len(SHAPE_CLASSES))) and len(classes) >= 4
    assert min(sizes) >= 8 and max(sizes) <= 64


def test_shapes_dump_round_trips_through_coco_reader(tmp_path: Path) -> None:
    paths = dump_shapes_coco(tmp_path, "val", num=3, seed=1)
    coco = CocoDetection(str(paths.json), str(paths.images))
    ds = ShapesDetection("val", 3, seed=1)
    assert coco.class_names == list(SHAPE_CLASSES)
    for i in range(3):
        torch.testing.assert_close(coco[i]["image"], ds[i]["image"])  # PNG is lossless
        torch.testing.assert_close(coco[i]["boxes"], ds[i]["boxes"])
        assert coco[i]["image_id"] == ds[i]["image_id"]
    assert coco.coco_ground_truth()["annotations"] == ds.coco_ground_truth()["annotations"]


def test_shapes_train_build_augments() -> None:
    train = build_shapes(ShapesParams(num_train=4, num_val=2, image_size=(64, 64)), "train")
    s = train[0]
    assert s["image"].shape == (3, 64, 64) and s["boxes"].shape[1] == 4
    with pytest.raises(ValueError, match="num_images"):
        ShapesDetection("val", 0)


def test_chess_set_loads(shared_data: Callable[[str], Path]) -> None:
    root = str(shared_data("chess"))
    sizes = {}
    for split in ("train", "val", "test"):
        ds = build_chess(ChessParams(root=root), split)
        assert len(ds.categories) == 12 and ds.skipped["bad_annotation"] == 0
        for i in range(len(ds)):  # every image decodes, at its annotated size
            assert ds.load(i)[1] is ds.records[i]
        sizes[split] = (len(ds), sum(len(r.boxes) for r in ds.records))
    assert sizes == {"train": (202, 2107), "val": (58, 386), "test": (29, 376)}
    assert "white-king" in ds.class_names and "bishop" not in ds.class_names
    s = build_chess(ChessParams(root=root), "val")[0]
    assert s["image"].shape == (3, 384, 384) and len(s["boxes"]) > 0
