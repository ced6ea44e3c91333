"""CocoDetection: parsing, the sample contract, each kind of bad annotation, skip counts,
bad images, empty data, the GT dict, and register_coco."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from pointforge.registry import DATASETS
from pointforge.tasks.detection.data import (
    AnnotationError,
    CocoDetection,
    CocoParams,
    SplitPaths,
    build_coco,
    register_coco,
)

from .conftest import coco_fixture, write_image


def test_reads_boxes_labels_and_sample_contract(tmp_path: Path) -> None:
    jp = coco_fixture(tmp_path)
    ds = CocoDetection(str(jp), str(tmp_path / "images"))
    assert len(ds) == 3
    assert ds.categories == [(3, "cat"), (7, "dog")]  # ascending id = contiguous order
    assert ds.class_names == ["cat", "dog"]
    s = ds[0]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 40, 60)
    assert s["image"].min() >= 0 and s["image"].max() <= 1
    torch.testing.assert_close(s["boxes"], torch.tensor([[5.0, 6, 25, 16], [30, 0, 60, 40]]))
    assert s["labels"].tolist() == [0, 1] and s["labels"].dtype == torch.int64
    assert s["image_id"] == 1 and s["orig_size"].tolist() == [40, 60]
    assert s["scale"].tolist() == [1.0, 1.0]
    # RGB: the file is BGR on disk.
    bgr = write_image(tmp_path / "ref.png", seed=1)
    np.testing.assert_allclose(s["image"][0].numpy() * 255, bgr[..., 2], atol=1e-3)
    # The crowd box of image 2 is not a training target; image 3's box (x1 = 60.5) is clipped.
    assert ds[1]["boxes"].shape == (0, 4)
    assert ds[2]["boxes"].tolist() == [[40.0, 20.0, 60.0, 40.0]]


def test_ground_truth_dict(tmp_path: Path) -> None:
    ds = CocoDetection(str(coco_fixture(tmp_path)), str(tmp_path / "images"))
    gt = ds.coco_ground_truth()
    assert [i["id"] for i in gt["images"]] == [1, 2, 3]
    anns = {a["id"]: a for a in gt["annotations"]}
    assert set(anns) == {10, 11, 12, 13}
    assert anns[10]["bbox"] == [5.0, 6.0, 20.0, 10.0] and anns[10]["area"] == 150
    assert anns[11]["area"] == 1200 and anns[11]["category_id"] == 7
    assert anns[12]["iscrowd"] == 1 and anns[10]["iscrowd"] == 0
    assert anns[13]["bbox"] == [40.0, 20.0, 20.0, 20.0]  # clipped
    assert gt["categories"] == [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]


BAD = [
    ({"bbox": [5, 5, 0, 10]}, "zero or negative size"),
    ({"bbox": [5, 5, -3, 10]}, "zero or negative size"),
    ({"bbox": [50, 5, 20, 10]}, "outside"),  # x1 = 70 > 60 + 1
    ({"bbox": [-2, 5, 10, 10]}, "outside"),
    ({"category_id": 99}, "category_id 99 is not declared"),
    ({"bbox": [1, 2, 3]}, "not \\[x, y, w, h\\]"),
    ({"image_id": 42}, "image id 42 is not in 'images'"),
]


@pytest.mark.parametrize(("change", "reason"), BAD)
def test_bad_annotation_names_file_and_id(tmp_path: Path, change: dict, reason: str) -> None:
    good = {"id": 20, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]}
    bad = {"id": 21, "image_id": 1, "category_id": 3, "bbox": [5, 5, 10, 10], **change}
    jp = coco_fixture(tmp_path, [good, bad])
    with pytest.raises(AnnotationError, match=reason) as info:
        CocoDetection(str(jp), str(tmp_path / "images"))
    assert str(jp) in str(info.value) and "annotation id 21" in str(info.value)
    ds = CocoDetection(str(jp), str(tmp_path / "images"), on_bad_annotation="skip")
    assert ds.skipped == {"bad_annotation": 1, "bad_image": 0}
    assert ds[0]["boxes"].tolist() == [[1.0, 1.0, 6.0, 6.0]]  # the good one stays
    assert [a["id"] for a in ds.coco_ground_truth()["annotations"]] == [20]


def test_skip_logs_each_and_a_summary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 0, 5]},
        {"id": 2, "image_id": 2, "category_id": 5, "bbox": [0, 0, 5, 5]},
    ]
    jp = coco_fixture(tmp_path, anns)
    with caplog.at_level(logging.WARNING):
        ds = CocoDetection(str(jp), str(tmp_path / "images"), on_bad_annotation="skip")
    assert ds.skipped["bad_annotation"] == 2
    text = caplog.text
    assert "annotation id 1" in text and "annotation id 2" in text
    assert "2 bad annotation(s) skipped" in text


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_bad_image(tmp_path: Path, damage: str) -> None:
    jp = coco_fixture(tmp_path)
    img = tmp_path / "images" / "img2.png"
    if damage == "missing":
        img.unlink()
    else:
        img.write_bytes(img.read_bytes()[:200])
    with pytest.raises(AnnotationError, match=r"img2\.png") as info:
        CocoDetection(str(jp), str(tmp_path / "images"))
    assert "image id 2" in str(info.value)
    ds = CocoDetection(str(jp), str(tmp_path / "images"), on_bad_image="skip")
    assert ds.skipped == {"bad_annotation": 0, "bad_image": 1}
    assert [r.image_id for r in ds.records] == [1, 3]
    assert [i["id"] for i in ds.coco_ground_truth()["images"]] == [1, 3]


def test_image_broken_after_construction_is_substituted_under_skip(tmp_path: Path) -> None:
    jp = coco_fixture(tmp_path)
    strict = CocoDetection(str(jp), str(tmp_path / "images"))
    lenient = CocoDetection(str(jp), str(tmp_path / "images"), on_bad_image="skip")
    write_image(tmp_path / "images" / "img1.png", h=30, w=60)  # now not the annotated size
    with pytest.raises(AnnotationError, match=r"img1\.png.*differs"):
        strict[0]
    assert lenient[0]["image_id"] == 2  # the next readable image, counted
    assert lenient.skipped["bad_image"] == 1


def test_empty_and_malformed(tmp_path: Path) -> None:
    empty = {"images": [], "annotations": [], "categories": []}
    (tmp_path / "e.json").write_text(json.dumps(empty))
    with pytest.raises(AnnotationError, match=r"no images in .*e\.json"):
        CocoDetection(str(tmp_path / "e.json"), str(tmp_path))
    (tmp_path / "x.json").write_text(json.dumps({"images": []}))
    with pytest.raises(AnnotationError, match="no 'annotations' list"):
        CocoDetection(str(tmp_path / "x.json"), str(tmp_path))
    with pytest.raises(AnnotationError, match="does not exist"):
        CocoDetection(str(tmp_path / "nope.json"), str(tmp_path))
    jp = coco_fixture(tmp_path)
    for name in ("img1.png", "img2.png", "img3.png"):
        (tmp_path / "images" / name).unlink()
    with pytest.raises(AnnotationError, match=r"no images .*\(3 image\(s\) skipped"):
        CocoDetection(str(jp), str(tmp_path / "images"), on_bad_image="skip")


def test_build_from_params_and_register(tmp_path: Path) -> None:
    jp = coco_fixture(tmp_path)
    paths = SplitPaths(str(jp), str(tmp_path / "images"))
    params = CocoParams(train=paths, val=paths, image_size=(32, 48))
    train, val = build_coco(params, "train"), build_coco(params, "val")
    assert train[0]["image"].shape == (3, 32, 48)
    v = val[0]  # letterbox: 60x40 -> 48x32 exactly, scale 0.8
    assert v["scale"].tolist() == pytest.approx([0.8, 0.8])
    torch.testing.assert_close(v["boxes"], torch.tensor([[4.0, 4.8, 20, 12.8], [24, 0, 48, 32]]))
    with pytest.raises(ValueError, match=r"data\.val\.json"):
        build_coco(CocoParams(train=paths), "val")
    register_coco("tiny_test_set", jp, tmp_path / "images")
    ds = DATASETS.build("tiny_test_set", CocoParams(image_size=(32, 32)), "train")
    assert isinstance(ds, CocoDetection) and len(ds) == 3
    with pytest.raises(ValueError, match="without val_json"):
        DATASETS.build("tiny_test_set", None, "val")
