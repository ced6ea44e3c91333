"""VocDetection and YoloDetection on tiny folders written by the tests: parsing, conventions
(VOC 1-based corners, difficult objects; YOLO normalised centres, background images), each
bad annotation naming file + object index / line, skip counts, bad images, empty data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pointforge.tasks.detection.data import (
    AnnotationError,
    VocDetection,
    VocParams,
    VocSplit,
    YoloDetection,
    build_voc,
)

from .conftest import write_image


def _voc_xml(filename: str, objects: list[tuple[str, tuple, int]], size=(60, 40)) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    w, h = size
    return (
        f"<annotation><filename>{filename}</filename><size><width>{w}</width>"
        f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>"
    )


def _voc(root: Path, second: list | None = None) -> Path:
    objects = {
        "a": [("dog", (1, 1, 10, 20), 0), ("cat", (31, 11, 60, 40), 0)],
        "b": second if second is not None else [("cat", (5, 5, 15, 15), 1)],
        "c": [("dog", (21, 1, 41, 11), 0)],
    }
    for stem, objs in objects.items():
        write_image(root / "JPEGImages" / f"{stem}.jpg")
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(_voc_xml(f"{stem}.jpg", objs))
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("c\n")
    return root


def test_voc_reads_split_and_conventions(tmp_path: Path) -> None:
    root = _voc(tmp_path)
    ds = VocDetection(str(root), "train")
    assert len(ds) == 2 and ds.class_names == ["cat", "dog"]
    assert ds.categories == [(1, "cat"), (2, "dog")]
    s = ds[0]
    # 1-based inclusive corners -> continuous: xmin - 1, xmax unchanged.
    torch.testing.assert_close(s["boxes"], torch.tensor([[0.0, 0, 10, 20], [30, 10, 60, 40]]))
    assert s["labels"].tolist() == [1, 0] and s["image_id"] == 1
    # A difficult object: no training target, but in the GT as iscrowd (ignored by COCO eval).
    assert ds[1]["boxes"].shape == (0, 4)
    gt = ds.coco_ground_truth()
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["bbox"] == [4.0, 4.0, 11.0, 11.0]
    assert len({a["id"] for a in gt["annotations"]}) == 3
    # build_voc: val takes its class list from train, so indices agree.
    params = VocParams(train=VocSplit(str(root), "train"), val=VocSplit(str(root), "val"))
    val = build_voc(params, "val")
    assert val.class_names == ["cat", "dog"] and val.records[0].labels.tolist() == [1]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (("cat", (10, 10, 5, 20), 0), "zero or negative size"),
        (("cat", (10, 10, 70, 20), 0), "outside"),
        (("horse", (1, 1, 5, 5), 0), "class 'horse' is not in data.class_names"),
        (("cat", ("x", 1, 5, 5), 0), "bndbox lacks numeric"),
    ],
)
def test_voc_bad_object(tmp_path: Path, obj: tuple, reason: str) -> None:
    root = _voc(tmp_path, second=[("dog", (1, 1, 5, 5), 0), obj])
    with pytest.raises(AnnotationError, match=reason) as info:
        VocDetection(str(root), "train", class_names=("cat", "dog"))
    assert "b.xml" in str(info.value) and "object index 1" in str(info.value)
    ds = VocDetection(str(root), "train", ("cat", "dog"), on_bad_annotation="skip")
    assert ds.skipped["bad_annotation"] == 1 and ds.records[1].labels.tolist() == [1]


def test_voc_bad_image_and_empty(tmp_path: Path) -> None:
    root = _voc(tmp_path)
    jpg = root / "JPEGImages" / "b.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-50])  # truncated: no FF D9
    with pytest.raises(AnnotationError, match=r"b\.jpg.*truncated JPEG"):
        VocDetection(str(root), "train")
    ds = VocDetection(str(root), "train", on_bad_image="skip")
    assert len(ds) == 1 and ds.skipped["bad_image"] == 1
    (root / "ImageSets" / "Main" / "empty.txt").write_text("")
    with pytest.raises(AnnotationError, match=r"no images in .*empty\.txt"):
        VocDetection(str(root), "empty")
    with pytest.raises(AnnotationError, match=r"nosuch\.txt does not exist"):
        VocDetection(str(root), "nosuch")


def _yolo(root: Path, lines_b: str = "1 0.5 0.5 0.5 0.5\n") -> Path:
    for stem in ("a", "b", "c"):
        write_image(root / "images" / "train" / f"{stem}.png")
    lab = root / "labels" / "train"
    lab.mkdir(parents=True)
    (lab / "a.txt").write_text("0 0.25 0.5 0.5 1.0\n\n2 0.75 0.25 0.1 0.1\n")
    (lab / "b.txt").write_text(lines_b)
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    return root


def test_yolo_reads_normalised_boxes_and_background(tmp_path: Path) -> None:
    root = _yolo(tmp_path)
    ds = YoloDetection(str(root / "images" / "train"))  # labels + classes.txt found
    assert ds.class_names == ["red", "green", "blue"] and len(ds) == 3
    s = ds[0]  # 60x40: cx=15, cy=20, w=30, h=40; second: cx=45, cy=10, w=6, h=4
    torch.testing.assert_close(s["boxes"], torch.tensor([[0.0, 0, 30, 40], [42, 8, 48, 12]]))
    assert s["labels"].tolist() == [0, 2]
    assert ds[2]["boxes"].shape == (0, 4)  # c has no label file: a background image
    assert ds.issues.notes  # ... and it was counted


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1 0.5 0.5 0 0.5", "zero or negative size"),
        ("1 0.9 0.5 0.5 0.5", "outside"),
        ("5 0.5 0.5 0.2 0.2", "class 5 is not declared"),
        ("1 0.5 0.5 0.2", "5 values"),
        ("one 0.5 0.5 0.2 0.2", "non-numeric"),
    ],
)
def test_yolo_bad_line_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    root = _yolo(tmp_path, lines_b=f"1 0.5 0.5 0.5 0.5\n{line}\n")
    with pytest.raises(AnnotationError, match=reason) as info:
        YoloDetection(str(root / "images" / "train"))
    assert "b.txt" in str(info.value) and "line 2" in str(info.value)
    ds = YoloDetection(str(root / "images" / "train"), on_bad_annotation="skip")
    assert ds.skipped == {"bad_annotation": 1, "bad_image": 0}
    assert ds.records[1].labels.tolist() == [1]


def test_yolo_errors(tmp_path: Path) -> None:
    root = _yolo(tmp_path)
    (root / "images" / "train" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(AnnotationError, match=r"a\.png.*truncated PNG"):
        YoloDetection(str(root / "images" / "train"))
    assert len(YoloDetection(str(root / "images" / "train"), on_bad_image="skip")) == 2
    write_image(root / "images" / "train" / "a.png")  # repaired
    with pytest.raises(AnnotationError, match="no label file"):
        YoloDetection(str(root / "images" / "train"), labels=str(tmp_path / "wrong"))
    (root / "classes.txt").unlink()
    with pytest.raises(AnnotationError, match="no class names"):
        YoloDetection(str(root / "images" / "train"))
    (tmp_path / "images" / "none").mkdir()
    (tmp_path / "labels" / "none").mkdir()
    with pytest.raises(AnnotationError, match="no images in"):
        YoloDetection(str(tmp_path / "images" / "none"), class_names=("a",))
