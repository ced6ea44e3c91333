"""The detection sample contract and the dataset base shared by every reader.

A dataset item is ``{"image": float32 (3, H, W) RGB in [0, 1], "boxes": float32 (K, 4) xyxy in
these pixels, "labels": int64 (K,) contiguous class index, "image_id": int, "scale": float32
(2,) = (sx, sy) from original to these pixels, "orig_size": int64 (2,) = (h, w)}``; K may be 0.

Pixel convention: continuous coordinates, pixel ``i`` covers ``[i, i + 1)``, so a box around
pixels ``x0..x1`` (inclusive) is ``(x0, ..., x1 + 1, ...)`` and COCO's ``bbox = [x, y, w, h]``
is ``xyxy = (x, y, x + w, y + h)``.

Readers parse and validate all annotations up front into :class:`ImageRecord`\\ s (original
pixels); :class:`FileDetectionDataset` decodes the image on access with
:func:`pointforge.data.image_io.read_image` and applies the transform.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.image_io import UnreadableImageError, check_image_file, read_image
from pointforge.tasks.detection.data.validation import AnnotationError, IssueLog

logger = logging.getLogger(__name__)


class BoxTransform(Protocol):
    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]: ...


@dataclass
class ImageRecord:
    """One image and its validated annotations, in original pixels."""

    image_id: int
    path: str
    height: int
    width: int
    boxes: np.ndarray  # float32 (K, 4) xyxy, clipped to the image
    labels: np.ndarray  # int64 (K,) contiguous class index
    ann_ids: list[int] = field(default_factory=list)  # one per box, for the GT dict
    areas: list[float] = field(default_factory=list)  # one per box (COCO's area if given)
    # Annotations kept for evaluation but not trained on (COCO iscrowd, VOC difficult):
    # float32 (M, 4) xyxy + int64 (M,) labels + ids; they go to the GT dict with iscrowd=1,
    # which COCO evaluation treats as "ignore" (matches to them are neither TP nor FP).
    ignore_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    ignore_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    ignore_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DetectionParams:
    """The ``data.*`` keys every detection dataset has: each reader's params dataclass extends
    this one, so a key shared by coco, voc, yolo, chess and the shapes set is declared once."""

    # Repeat-factor sampling for rare classes (LVIS): with threshold t, each training image is
    # drawn about max(1, sqrt(t / f_c)) times an epoch for its rarest class c, f_c being the
    # fraction of training images that hold c. In (0, 1]; null: off, every image once an epoch.
    # See docs/detection.md.
    repeat_threshold: float | None = None


def empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


class DetectionDataset(Dataset):
    """Base: ``categories`` (dataset id, name) in contiguous-index order, ``class_names``,
    ``skipped`` counts, :meth:`coco_ground_truth`, and :meth:`load` (uint8 RGB + record) that
    subclasses implement; ``__getitem__`` applies ``transform`` and builds the sample dict."""

    name = "detection"
    categories: list[tuple[int, str]]
    records: list[ImageRecord]
    transform: BoxTransform | None

    @property
    def class_names(self) -> list[str]:
        return [n for _, n in self.categories]

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> tuple[np.ndarray, ImageRecord]:
        """``(uint8 RGB (h, w, 3), record)`` of item ``index``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        rgb, rec = self.load(index)
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
        boxes = torch.from_numpy(rec.boxes).reshape(-1, 4)
        labels = torch.from_numpy(rec.labels).to(torch.int64)
        if self.transform is None:
            out = {
                "image": image.to(torch.float32) / 255.0,
                "boxes": boxes.clone(),
                "labels": labels.clone(),
                "scale": torch.ones(2, dtype=torch.float32),
            }
        else:
            out = self.transform(image, boxes, labels)
        orig_size = torch.tensor([rec.height, rec.width], dtype=torch.int64)
        return {**out, "image_id": rec.image_id, "orig_size": orig_size}

    def coco_ground_truth(self) -> dict[str, Any]:
        """The COCO-format ground truth for the evaluator: ``images``, ``annotations`` (``bbox``
        xywh in original pixels, ``area``, ``iscrowd``), ``categories``; ids match samples'
        ``image_id`` and the categories' dataset ids."""
        images, anns = [], []
        next_id = 1 + max((i for r in self.records for i in r.ann_ids + r.ignore_ids), default=0)
        for rec in self.records:
            images.append(
                {
                    "id": rec.image_id,
                    "file_name": Path(rec.path).name,
                    "height": rec.height,
                    "width": rec.width,
                }
            )
            groups = [
                (rec.boxes, rec.labels, rec.ann_ids, rec.areas, 0),
                (rec.ignore_boxes, rec.ignore_labels, rec.ignore_ids, [], 1),
            ]
            for boxes, labels, ids, areas, crowd in groups:
                for k, (box, label) in enumerate(zip(boxes, labels)):
                    x0, y0, x1, y1 = (float(v) for v in box)
                    if k < len(ids):
                        ann_id = ids[k]
                    else:
                        ann_id, next_id = next_id, next_id + 1
                    area = areas[k] if k < len(areas) else (x1 - x0) * (y1 - y0)
                    anns.append(
                        {
                            "id": int(ann_id),
                            "image_id": rec.image_id,
                            "category_id": self.categories[int(label)][0],
                            "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "area": float(area),
                            "iscrowd": crowd,
                        }
                    )
        cats = [{"id": cid, "name": name} for cid, name in self.categories]
        return {"images": images, "annotations": anns, "categories": cats}


class FileDetectionDataset(DetectionDataset):
    """Records backed by image files; subclasses fill ``records`` and ``categories`` and call
    :meth:`_finish`."""

    def __init__(self, issues: IssueLog, transform: BoxTransform | None) -> None:
        self.issues = issues
        self.transform = transform
        self.records = []
        self.categories = []

    @property
    def skipped(self) -> dict[str, int]:
        """What ``skip`` dropped: ``{"bad_annotation": n, "bad_image": m}`` (zeros included)."""
        c = self.issues.counts
        return {"bad_annotation": c["bad_annotation"], "bad_image": c["bad_image"]}

    def _check_image(self, path: str, where: str) -> bool:
        """Structural check of one image file at construction (exists, JPEG/PNG end marker)."""
        try:
            check_image_file(path)
        except UnreadableImageError as exc:
            self.issues.bad_image(path, exc.reason, where)
            return False
        return True

    def _finish(self, source: str) -> None:
        """Refuse an empty dataset, log the summary once."""
        self.issues.summary()
        if not self.records:
            dropped = self.issues.counts["bad_image"]
            why = f" ({dropped} image(s) skipped as bad)" if dropped else ""
            raise AnnotationError(f"{self.issues.dataset}: no images in {source}{why}")
        if not self.categories:
            raise AnnotationError(f"{self.issues.dataset}: no categories declared in {source}")

    def load(self, index: int) -> tuple[np.ndarray, ImageRecord]:
        """Decode item ``index``; under ``on_bad_image: skip`` an image that fails to decode
        (or whose size differs from its annotation) is logged, counted and replaced by the next
        readable one, so a DataLoader never sees a hole."""
        n = len(self.records)
        for step in range(n):
            rec = self.records[(index + step) % n]
            try:
                bgr = read_image(rec.path)
            except UnreadableImageError as exc:
                self.issues.bad_image(rec.path, exc.reason, f"image id {rec.image_id}")
                continue
            if bgr.shape[:2] != (rec.height, rec.width):
                self.issues.bad_image(
                    rec.path,
                    f"decoded size {bgr.shape[1]}x{bgr.shape[0]} differs from the annotated "
                    f"{rec.width}x{rec.height}",
                    f"image id {rec.image_id}",
                )
                continue
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rec
        raise AnnotationError(f"{self.issues.dataset}: no readable image left ({n} tried)")
