"""Pascal VOC reader: ``<root>/Annotations/<id>.xml``, ``<root>/JPEGImages/<filename>``, and
optionally ``<root>/ImageSets/Main/<split>.txt`` listing the ids of a split.

VOC corners are 1-based inclusive pixel indices (the devkit's convention), so ``xmin..xmax``
covers continuous ``[xmin - 1, xmax)``; we subtract 1 from ``xmin``/``ymin`` only. Objects marked
``difficult`` are not trained on; they go to the ground truth as ``iscrowd: 1`` so evaluation
ignores detections of them, as the VOC protocol does (their count is logged).

Classes: ``class_names`` from the config (their order is the contiguous index; an object of
another class is a bad annotation), or, when empty, every name found in the training split's
xml files, sorted (:func:`voc_class_names`), so train and val share one list. Category ids are
``index + 1``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
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


@dataclass(frozen=True)
class VocSplit:
    """One split of a VOC-layout dataset (keys ``data.train.root``, ``data.train.split``)."""

    root: str | None = None  # folder holding Annotations/, JPEGImages/, ImageSets/Main/
    split: str | None = None  # ImageSets/Main/<split>.txt; None: every xml in Annotations/


@dataclass(frozen=True)
class VocParams(DetectionParams):
    train: VocSplit = field(default_factory=VocSplit)
    val: VocSplit = field(default_factory=VocSplit)
    class_names: tuple[str, ...] = ()  # empty: every class name found in the split, sorted
    # CenterNet trains Pascal VOC at 384x384 (experiments/ctdet_pascal_resdcn18_384.sh).
    image_size: tuple[int, int] = (384, 384)
    on_bad_annotation: str = field(default="error", metadata=POLICY)
    on_bad_image: str = field(default="error", metadata=POLICY)
    augment: AugmentParams = field(default_factory=AugmentParams)


def _split_ids(root: str, split: str | None, dataset: str) -> tuple[list[str], str]:
    """The image ids of ``split`` (all xml stems when ``None``) and the file that lists them."""
    if split is not None:
        list_file = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
        if not list_file.is_file():
            raise AnnotationError(f"{dataset}: split list {list_file} does not exist")
        ids = [ln.split()[0] for ln in list_file.read_text().splitlines() if ln.strip()]
        return ids, str(list_file)
    ann_dir = Path(root) / "Annotations"
    if not ann_dir.is_dir():
        raise AnnotationError(f"{dataset}: annotation folder {ann_dir} does not exist")
    return sorted(p.stem for p in ann_dir.glob("*.xml")), str(ann_dir)


def voc_class_names(root: str, split: str | None = None) -> list[str]:
    """Every object class name in the split's xml files, sorted (unparsable files are left
    to the reader, which reports them)."""
    ids, _ = _split_ids(root, split, "voc")
    names: set[str] = set()
    for i in ids:
        try:
            tree = ET.parse(Path(root) / "Annotations" / f"{i}.xml").getroot()
        except (OSError, ET.ParseError):
            continue
        names.update(_text(o, "name") or "" for o in tree.findall("object"))
    return sorted(names)


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else None


class VocDetection(FileDetectionDataset):
    """Items of a VOC-layout folder; see :mod:`pointforge.tasks.detection.data.base`."""

    def __init__(
        self,
        root: str,
        split: str | None = None,
        class_names: tuple[str, ...] | list[str] = (),
        transform: BoxTransform | None = None,
        on_bad_annotation: str = "error",
        on_bad_image: str = "error",
        name: str = "voc",
    ) -> None:
        super().__init__(IssueLog(name, on_bad_annotation, on_bad_image), transform)
        self.name = name
        ann_dir = Path(root) / "Annotations"
        ids, source = _split_ids(root, split, name)
        parsed = [self._parse(ann_dir / f"{i}.xml", Path(root) / "JPEGImages", i) for i in ids]
        if class_names:
            names = list(class_names)
            if len(set(names)) != len(names):
                raise ValueError(f"{name}: data.class_names has duplicates: {names}")
        else:
            names = sorted({o[0] for p in parsed if p for o in p[3]})
        self.categories = [(i + 1, n) for i, n in enumerate(names)]
        index_of = {n: i for i, n in enumerate(names)}
        for image_id, p in enumerate(parsed, start=1):
            if p is not None:
                self._add(image_id, p, index_of)
        difficult = sum(len(r.ignore_ids) for r in self.records)
        if difficult:
            self.issues.note("difficult object(s) kept for evaluation only", difficult)
        self._finish(source)

    def _parse(self, xml_path: Path, image_dir: Path, stem: str) -> tuple | None:
        """``(xml, image path, (w, h), [(class, xyxy or None, difficult, index)])``, or ``None`` if
        the image was skipped. Raises for an unreadable xml (there is no data to skip to)."""
        xp = str(xml_path)
        try:
            tree = ET.parse(xp).getroot()
        except FileNotFoundError:
            raise AnnotationError(f"{self.name}: annotation file {xp} does not exist") from None
        except ET.ParseError as exc:
            raise AnnotationError(f"{self.name}: {xp} is not valid xml: {exc}") from None
        image_path = str(image_dir / (_text(tree, "filename") or f"{stem}.jpg"))
        size = tree.find("size")
        try:
            w, h = int(_text(size, "width") or 0), int(_text(size, "height") or 0)
        except ValueError:
            w = h = 0
        if not self._check_image(image_path, f"annotated in {xp}"):
            return None
        if w <= 0 or h <= 0:  # some exporters omit <size>: read it from the image header
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(image_path) as im:
                    w, h = im.size
            except (OSError, UnidentifiedImageError) as exc:
                self.issues.bad_image(image_path, f"cannot read its size ({exc})", xp)
                return None
        objects = []
        for k, obj in enumerate(tree.findall("object")):
            cls = _text(obj, "name") or ""
            bb = obj.find("bndbox")
            try:
                box = tuple(float(_text(bb, t) or "nan") for t in ("xmin", "ymin", "xmax", "ymax"))
                box = (box[0] - 1.0, box[1] - 1.0, box[2], box[3])  # 1-based inclusive → [,)
            except ValueError:
                box = None
            objects.append((cls, box, _text(obj, "difficult") == "1", k))
        return xp, image_path, (w, h), objects

    def _add(self, image_id: int, parsed: tuple, index_of: dict[str, int]) -> None:
        xp, image_path, (w, h), objects = parsed
        keep: list[tuple[np.ndarray, int]] = []
        hard: list[tuple[np.ndarray, int]] = []
        for cls, box, difficult, k in objects:
            where = f"object index {k} ('{cls}')"
            if cls not in index_of:
                self.issues.bad_annotation(xp, where, f"class '{cls}' is not in data.class_names")
                continue
            if box is None:
                self.issues.bad_annotation(xp, where, "bndbox lacks numeric xmin/ymin/xmax/ymax")
                continue
            clipped, reason = check_box(box, w, h)
            if clipped is None:
                self.issues.bad_annotation(xp, where, reason)
                continue
            (hard if difficult else keep).append((clipped, index_of[cls]))
        n = len(keep)
        base = 1000 * image_id  # stable annotation ids: image id * 1000 + object order
        rec = ImageRecord(
            image_id=image_id,
            path=image_path,
            height=h,
            width=w,
            boxes=np.stack([b for b, _ in keep]) if keep else np.zeros((0, 4), np.float32),
            labels=np.array([c for _, c in keep], dtype=np.int64),
            ann_ids=[base + i for i in range(n)],
        )
        if hard:
            rec.ignore_boxes = np.stack([b for b, _ in hard])
            rec.ignore_labels = np.array([c for _, c in hard], dtype=np.int64)
            rec.ignore_ids = [base + n + i for i in range(len(hard))]
        self.records.append(rec)


@DATASETS.register("voc", params=VocParams)
def build_voc(params: VocParams | None = None, split: str = "train") -> VocDetection:
    """The ``split`` ("train"/"val") of ``params``, with augmentation on ``train``."""
    params = params or VocParams()
    paths = {"train": params.train, "val": params.val}.get(split)
    if paths is None:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if paths.root is None:
        raise ValueError(f"config key 'data.{split}.root' must be set for a VOC dataset")
    names = params.class_names
    if not names and params.train.root is not None:
        # Both splits must share one class list: take it from the training split.
        names = tuple(voc_class_names(params.train.root, params.train.split))
    return VocDetection(
        os.fspath(paths.root),
        paths.split,
        names,
        transform=build_transform(params.image_size, split == "train", params.augment),
        on_bad_annotation=params.on_bad_annotation,
        on_bad_image=params.on_bad_image,
        name=f"voc[{split}]",
    )
