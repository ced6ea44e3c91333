"""COCO-format detection reader (a json of images/annotations/categories + an image folder),
its config dataclass, and :func:`register_coco` to name a COCO dataset from Python.

Why a reader of our own rather than pycocotools' ``COCO``: we need every annotation validated
with a message that names the json and the annotation id, the skip policy, contiguous class
indices, and nothing else; the json is plain enough to parse directly.

Crowd annotations (``iscrowd: 1``) are not training targets (a crowd box is many objects) but
stay in :meth:`coco_ground_truth` as ``iscrowd: 1``, which COCO evaluation ignores; their number
is logged. Categories are all those the json declares, in ascending id order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pointforge.registry import DATASETS
from pointforge.tasks.detection.data.base import (
    BoxTransform,
    DetectionParams,
    FileDetectionDataset,
    ImageRecord,
)
from pointforge.tasks.detection.data.transforms import AugmentParams, build_transform
from pointforge.tasks.detection.data.validation import AnnotationError, IssueLog, check_box

POLICY = {"choices": ("error", "skip")}


@dataclass(frozen=True)
class SplitPaths:
    """One split of a COCO dataset."""

    json: str | None = None  # annotation file (COCO instances json)
    images: str | None = None  # folder that the json's file_name entries are relative to


@dataclass(frozen=True)
class CocoParams(DetectionParams):
    """Config keys ``data.train.json``, ``data.train.images``, ``data.val.*``, ..."""

    train: SplitPaths = field(default_factory=SplitPaths)
    val: SplitPaths = field(default_factory=SplitPaths)
    # Network input (H, W). CenterNet trains COCO at 512x512 (opts.py --input_res 512).
    image_size: tuple[int, int] = (512, 512)
    on_bad_annotation: str = field(default="error", metadata=POLICY)  # error: stop; skip: log+count
    on_bad_image: str = field(default="error", metadata=POLICY)
    augment: AugmentParams = field(default_factory=AugmentParams)


def _load_json(path: str, dataset: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise AnnotationError(f"{dataset}: annotation file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{dataset}: {path} is not valid json: {exc}") from None
    if not isinstance(data, dict):
        raise AnnotationError(f"{dataset}: {path} must hold a json object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f"{dataset}: {path} has no '{key}' list (not a COCO json?)")
    return data


class CocoDetection(FileDetectionDataset):
    """Items of a COCO json; see :mod:`pointforge.tasks.detection.data.base` for the sample."""

    def __init__(
        self,
        json_path: str,
        images: str,
        transform: BoxTransform | None = None,
        on_bad_annotation: str = "error",
        on_bad_image: str = "error",
        name: str = "coco",
    ) -> None:
        super().__init__(IssueLog(name, on_bad_annotation, on_bad_image), transform)
        self.name = name
        self.json_path = str(json_path)
        data = _load_json(self.json_path, name)
        jp = self.json_path
        cats: dict[int, str] = {}
        for c in data["categories"]:
            if not isinstance(c, dict) or "id" not in c or "name" not in c:
                raise AnnotationError(f"{name}: {jp}: category entry {c!r} lacks 'id' or 'name'")
            if int(c["id"]) in cats:
                raise AnnotationError(f"{name}: {jp}: category id {c['id']} declared twice")
            cats[int(c["id"])] = str(c["name"])
        self.categories = sorted(cats.items())
        index_of = {cid: i for i, (cid, _) in enumerate(self.categories)}

        by_image: dict[int, list[dict[str, Any]]] = {}
        for k, a in enumerate(data["annotations"]):
            if not isinstance(a, dict) or "image_id" not in a or "id" not in a:
                raise AnnotationError(f"{name}: {jp}: annotation #{k} lacks 'id' or 'image_id'")
            by_image.setdefault(int(a["image_id"]), []).append(a)
        seen: set[int] = set()
        for img in data["images"]:
            try:
                image_id, file_name = int(img["id"]), str(img["file_name"])
                width, height = int(img["width"]), int(img["height"])
            except (KeyError, TypeError, ValueError):
                raise AnnotationError(
                    f"{name}: {jp}: image entry {img!r} needs id, file_name, width, height"
                ) from None
            if image_id in seen:
                raise AnnotationError(f"{name}: {jp}: image id {image_id} listed twice")
            seen.add(image_id)
            path = os.path.join(images, file_name)
            anns = by_image.pop(image_id, [])
            if width <= 0 or height <= 0:
                self.issues.bad_image(path, f"size {width}x{height} in {jp}", f"id {image_id}")
                continue
            if not self._check_image(path, f"image id {image_id} in {jp}"):
                continue
            self.records.append(self._record(image_id, path, width, height, anns, index_of))
        for image_id, anns in by_image.items():  # annotations of images the json never lists
            for a in anns:
                self.issues.bad_annotation(
                    jp, f"annotation id {a['id']}", f"image id {image_id} is not in 'images'"
                )
        crowd = sum(len(r.ignore_ids) for r in self.records)
        if crowd:
            self.issues.note("crowd annotation(s) kept for evaluation only (not trained on)", crowd)
        self._finish(jp)

    def _record(
        self,
        image_id: int,
        path: str,
        width: int,
        height: int,
        anns: list[dict[str, Any]],
        index_of: dict[int, int],
    ) -> ImageRecord:
        jp = self.json_path
        train: list[tuple[np.ndarray, int, int, float]] = []
        crowd: list[tuple[np.ndarray, int, int]] = []
        for a in anns:
            where = f"annotation id {a['id']} (image id {image_id}, {Path(path).name})"
            cid = a.get("category_id")
            if cid not in index_of:
                self.issues.bad_annotation(jp, where, f"category_id {cid!r} is not declared")
                continue
            bbox = a.get("bbox")
            if not isinstance(bbox, list | tuple) or len(bbox) != 4:
                self.issues.bad_annotation(jp, where, f"bbox {bbox!r} is not [x, y, w, h]")
                continue
            x, y, w, h = (float(v) for v in bbox)
            box, reason = check_box((x, y, x + w, y + h), width, height)
            if box is None:
                self.issues.bad_annotation(jp, where, reason)
                continue
            if a.get("iscrowd", 0):
                crowd.append((box, index_of[cid], int(a["id"])))
                continue
            area = a.get("area")
            area = float(area) if isinstance(area, int | float) and math.isfinite(area) else None
            if area is None or area <= 0:
                area = float((box[2] - box[0]) * (box[3] - box[1]))
            train.append((box, index_of[cid], int(a["id"]), area))
        rec = ImageRecord(
            image_id=image_id,
            path=path,
            height=height,
            width=width,
            boxes=np.stack([t[0] for t in train]) if train else np.zeros((0, 4), np.float32),
            labels=np.array([t[1] for t in train], dtype=np.int64),
            ann_ids=[t[2] for t in train],
            areas=[t[3] for t in train],
        )
        if crowd:
            rec.ignore_boxes = np.stack([c[0] for c in crowd])
            rec.ignore_labels = np.array([c[1] for c in crowd], dtype=np.int64)
            rec.ignore_ids = [c[2] for c in crowd]
        return rec


def _split_paths(params: CocoParams, split: str) -> SplitPaths:
    paths = {"train": params.train, "val": params.val}.get(split)
    if paths is None:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    for key in ("json", "images"):
        if getattr(paths, key) is None:
            raise ValueError(f"config key 'data.{split}.{key}' must be set for a COCO dataset")
    return paths


@DATASETS.register("coco", params=CocoParams)
def build_coco(params: CocoParams | None = None, split: str = "train") -> CocoDetection:
    """The ``split`` of ``params`` with the training augmentation on ``train``."""
    params = params or CocoParams()
    return _dataset(params, _split_paths(params, split), split, "coco")


def _dataset(params: CocoParams, paths: SplitPaths, split: str, name: str) -> CocoDetection:
    """One split read from ``paths`` with ``params``' size, policies and augmentation."""
    return CocoDetection(
        str(paths.json),
        str(paths.images),
        transform=build_transform(params.image_size, split == "train", params.augment),
        on_bad_annotation=params.on_bad_annotation,
        on_bad_image=params.on_bad_image,
        name=f"{name}[{split}]",
    )


def register_coco(
    name: str,
    json: str | Path,
    images: str | Path,
    val_json: str | Path | None = None,
    val_images: str | Path | None = None,
) -> Callable[..., CocoDetection]:
    """Register a COCO-format dataset as ``DATASETS[name]`` (cf. detectron2's
    ``register_coco_instances``), so a config can say ``data.name: <name>``.

    The factory takes ``(params: CocoParams | None = None, split="train")``; the paths given
    here replace ``params.train`` / ``params.val`` (image size, policies and augmentation still
    come from ``params``). Without ``val_json`` the dataset has no val split (asking for it is an
    error rather than evaluating on the training images)."""
    train = SplitPaths(str(json), str(images))
    val = SplitPaths(str(val_json), str(val_images or images)) if val_json is not None else None

    def factory(params: CocoParams | None = None, split: str = "train") -> CocoDetection:
        params = params or CocoParams()
        if split == "val" and val is None:
            raise ValueError(f"dataset '{name}' was registered without val_json; no val split")
        paths = train if split == "train" else val
        if paths is None or split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return _dataset(params, paths, split, name)

    factory.__name__ = f"coco_{name}"
    factory.__qualname__ = factory.__name__
    DATASETS.register(name, params=CocoParams)(factory)
    return factory
