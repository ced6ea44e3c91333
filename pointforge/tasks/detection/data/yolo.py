"""YOLO txt reader: an ``images`` folder and a ``labels`` folder mirroring it, one
``<image stem>.txt`` per image with lines ``class cx cy w h`` (centre and size normalised by the
image width/height, class a 0-based index into the class names).

Class names come from ``class_names`` in the config, else from a ``classes.txt`` (one name per
line; ``classes_file``, or found next to the labels/images folders). Category ids are
``index + 1``. An image without a label file is a background image (YOLO's convention) and is
counted in the log; if no image has a label file, the labels folder is wrong and it is an error.
Image sizes are read from the file headers (Pillow, no decoding) to turn normalised boxes
into pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class YoloSplit:
    """One split (keys ``data.train.images``, ``data.train.labels``)."""

    images: str | None = None  # image folder (searched recursively)
    labels: str | None = None  # None: the images path with its last 'images' part -> 'labels'


@dataclass(frozen=True)
class YoloParams(DetectionParams):
    train: YoloSplit = field(default_factory=YoloSplit)
    val: YoloSplit = field(default_factory=YoloSplit)
    class_names: tuple[str, ...] = ()  # empty: read classes_file / a classes.txt
    classes_file: str | None = None  # one class name per line, line i = class index i
    image_size: tuple[int, int] = (512, 512)  # CenterNet's COCO input resolution
    on_bad_annotation: str = field(default="error", metadata=POLICY)
    on_bad_image: str = field(default="error", metadata=POLICY)
    augment: AugmentParams = field(default_factory=AugmentParams)


def default_labels_dir(images: str | Path) -> Path:
    """``.../images/train`` -> ``.../labels/train`` (the last ``images`` part is replaced)."""
    parts = list(Path(images).parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    raise ValueError(
        f"cannot derive the labels folder from {images} (no 'images' part): set data.*.labels"
    )


def find_class_names(
    class_names: tuple[str, ...] | list[str], classes_file: str | None, labels: Path, images: Path
) -> list[str]:
    """The class list: explicit names, else ``classes_file``, else a ``classes.txt`` in the
    labels folder, the images folder, their parents, or the labels' grandparent (the dataset
    root of ``root/{images,labels}/<split>``)."""
    if class_names:
        return list(class_names)
    candidates = [Path(classes_file)] if classes_file else []
    if not classes_file:
        for d in (labels, images, labels.parent, images.parent, labels.parent.parent):
            if d / "classes.txt" not in candidates:
                candidates.append(d / "classes.txt")
    for c in candidates:
        if c.is_file():
            names = [ln.strip() for ln in c.read_text().splitlines() if ln.strip()]
            if not names:
                raise AnnotationError(f"yolo: class list {c} is empty")
            return names
    raise AnnotationError(
        f"yolo: no class names: set data.class_names or data.classes_file (looked for "
        f"{', '.join(str(c) for c in candidates)})"
    )


class YoloDetection(FileDetectionDataset):
    """Items of a YOLO images/labels pair; see :mod:`pointforge.tasks.detection.data.base`."""

    def __init__(
        self,
        images: str,
        labels: str | None = None,
        class_names: tuple[str, ...] | list[str] = (),
        classes_file: str | None = None,
        transform: BoxTransform | None = None,
        on_bad_annotation: str = "error",
        on_bad_image: str = "error",
        name: str = "yolo",
    ) -> None:
        super().__init__(IssueLog(name, on_bad_annotation, on_bad_image), transform)
        self.name = name
        image_dir = Path(images)
        label_dir = Path(labels) if labels is not None else default_labels_dir(images)
        if not image_dir.is_dir():
            raise AnnotationError(f"{name}: image folder {image_dir} does not exist")
        names = find_class_names(class_names, classes_file, label_dir, image_dir)
        self.categories = [(i + 1, n) for i, n in enumerate(names)]
        files = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        with_labels = 0
        for image_id, path in enumerate(files, start=1):
            label_file = label_dir / path.relative_to(image_dir).with_suffix(".txt")
            with_labels += label_file.is_file()
            rec = self._record(image_id, path, label_file)
            if rec is not None:
                self.records.append(rec)
        if files and not with_labels:
            raise AnnotationError(f"{name}: no label file in {label_dir} matches an image")
        if with_labels < len(files):
            self.issues.note(
                "image(s) without a label file, used as background images", len(files) - with_labels
            )
        self._finish(str(image_dir))

    def _record(self, image_id: int, path: Path, label_file: Path) -> ImageRecord | None:
        from PIL import Image, UnidentifiedImageError

        if not self._check_image(str(path), f"image #{image_id}"):
            return None
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (OSError, UnidentifiedImageError) as exc:
            self.issues.bad_image(str(path), f"cannot read its header ({exc})")
            return None
        boxes: list[np.ndarray] = []
        labels: list[int] = []
        lines = label_file.read_text().splitlines() if label_file.is_file() else []
        lf, num_classes = str(label_file), len(self.categories)
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"line {line_no}"
            fields = line.split()
            if len(fields) != 5:
                self.issues.bad_annotation(
                    lf, where, f"expected 'class cx cy w h' (5 values), got {len(fields)}"
                )
                continue
            try:
                cls = int(fields[0])
                cx, cy, bw, bh = (float(v) for v in fields[1:])
            except ValueError:
                self.issues.bad_annotation(lf, where, f"non-numeric values in {line.strip()!r}")
                continue
            if not 0 <= cls < num_classes:
                self.issues.bad_annotation(
                    lf, where, f"class {cls} is not declared (have {num_classes} classes)"
                )
                continue
            xyxy = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            box, reason = check_box(xyxy, w, h)
            if box is None:
                self.issues.bad_annotation(lf, where, reason)
                continue
            boxes.append(box)
            labels.append(cls)
        return ImageRecord(
            image_id=image_id,
            path=str(path),
            height=h,
            width=w,
            boxes=np.stack(boxes) if boxes else np.zeros((0, 4), np.float32),
            labels=np.array(labels, dtype=np.int64),
            ann_ids=[1000 * image_id + k for k in range(len(boxes))],
        )


@DATASETS.register("yolo", params=YoloParams)
def build_yolo(params: YoloParams | None = None, split: str = "train") -> YoloDetection:
    """The ``split`` ("train"/"val") of ``params``, with augmentation on ``train``."""
    params = params or YoloParams()
    paths = {"train": params.train, "val": params.val}.get(split)
    if paths is None:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if paths.images is None:
        raise ValueError(f"config key 'data.{split}.images' must be set for a YOLO dataset")
    return YoloDetection(
        paths.images,
        paths.labels,
        params.class_names,
        params.classes_file,
        transform=build_transform(params.image_size, split == "train", params.augment),
        on_bad_annotation=params.on_bad_annotation,
        on_bad_image=params.on_bad_image,
        name=f"yolo[{split}]",
    )
