"""Procedural "shapes" detection set: coloured primitives over a textured background.

Why: detection code needs a dataset that exists without downloads, is exactly reproducible,
and is learnable to a high mAP in minutes, so tests and the quickstart can check that training
really works. Item ``i`` is drawn from ``np.random.default_rng((seed, i))``, so it is the same
image whatever the order, worker or process. Train uses indices ``0..num_train-1``, val indices
from :data:`VAL_OFFSET` on, so the splits never share an image; ``image_id`` is that index.

Each image holds 1..``max_objects`` primitives of :data:`SHAPE_CLASSES` (random size, position,
rotation, saturated colour of a hue distinct from the image's other objects) over a
desaturated texture (smooth colour field + stripes + noise).
Primitives may overlap, but each keeps at least :data:`MIN_VISIBLE` of its pixels visible. They
are drawn without anti-aliasing, so an object's visible pixels are exactly its colour and its
box is the tight bound of those pixels (xyxy with the pixel convention of ``base``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pointforge.registry import DATASETS
from pointforge.tasks.detection.data.base import DetectionDataset, DetectionParams, ImageRecord
from pointforge.tasks.detection.data.coco import SplitPaths
from pointforge.tasks.detection.data.transforms import AugmentParams, build_transform

SHAPE_CLASSES = ("rectangle", "ellipse", "triangle", "star", "cross")
VAL_OFFSET = 1_000_000  # first index of the val split (train indices stay below it)
MIN_VISIBLE = 0.6  # an object must keep this fraction of its pixels after later overlaps
MAX_TRIES = 20  # placement attempts per object before giving up on it
MIN_HUE_GAP = 18.0  # OpenCV hue units (0..180): objects of one image differ in hue by >= 36 deg


@dataclass(frozen=True)
class ShapesParams(DetectionParams):
    """Config keys ``data.*`` of the built-in shapes set."""

    num_train: int = 4000  # enough for a small CenterNet to reach high mAP on 128x128
    num_val: int = 200
    image_size: tuple[int, int] = (128, 128)  # rendered (H, W), also the network input
    seed: int = 0  # item i of a split is a pure function of (seed, index)
    min_size: int = 12  # object extent in px (before rotation): large enough at stride 4
    max_size: int = 60
    max_objects: int = 6
    augment: AugmentParams = field(default_factory=AugmentParams)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Desaturated background: smooth colour field + random stripes + pixel noise. float32."""
    coarse = rng.uniform(40, 200, (max(2, h // 32), max(2, w // 32), 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.3 * (img - grey)  # low saturation, so the saturated objects stand out
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
    stripes = np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * (2 * math.pi / period))
    img += rng.uniform(0, 20) * stripes[..., None]
    img += rng.normal(0, rng.uniform(2, 8), img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def _colour(rng: np.random.Generator, used_hues: list[float]) -> tuple[float, tuple[int, int, int]]:
    """``(hue, RGB)`` of a saturated, bright colour (HSV with S, V >= 0.6) whose hue is at least
    :data:`MIN_HUE_GAP` from ``used_hues``, so touching objects never merge into one blob."""
    hue = rng.uniform(0, 180)
    for _ in range(MAX_TRIES):
        if all(min(abs(hue - u), 180 - abs(hue - u)) >= MIN_HUE_GAP for u in used_hues):
            break
        hue = rng.uniform(0, 180)
    hsv = np.array([[[hue, rng.uniform(150, 255), rng.uniform(150, 255)]]])
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return hue, (int(rgb[0]), int(rgb[1]), int(rgb[2]))


def _polygon(kind: str, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) of a rotated primitive with extent ``size`` centred at (cx, cy)."""
    r = size / 2
    if kind == "rectangle":
        pts = np.array([[-1, -0.6], [1, -0.6], [1, 0.6], [-1, 0.6]]) * r
    elif kind == "triangle":
        a = np.deg2rad([-90, 30, 150])
        pts = np.stack([np.cos(a), np.sin(a)], 1) * r
    elif kind == "star":
        a = np.deg2rad(np.arange(10) * 36 - 90)
        rad = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        pts = np.stack([np.cos(a) * rad, np.sin(a) * rad], 1)
    elif kind == "cross":
        t = 0.33
        outline = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1)]
        outline += [(-t, t), (-1, t), (-1, -t), (-t, -t)]
        pts = np.array(outline) * r
    else:
        raise ValueError(f"unknown shape {kind!r}")
    c, s = math.cos(angle), math.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return np.round(rot + np.array([cx, cy])).astype(np.int32)


def _mask(kind: str, rng: np.random.Generator, h: int, w: int, lo: int, hi: int) -> np.ndarray:
    size = rng.uniform(lo, hi)
    m = math.ceil(size / 2) + 1
    cx, cy = rng.uniform(m, w - m), rng.uniform(m, h - m)
    angle = rng.uniform(0, 2 * math.pi)
    mask = np.zeros((h, w), np.uint8)
    if kind == "ellipse":
        axes = (max(1, round(size / 2)), max(1, round(size / 2 * rng.uniform(0.5, 1.0))))
        cv2.ellipse(
            mask, (round(cx), round(cy)), axes, math.degrees(angle), 0, 360, 1, -1, cv2.LINE_8
        )
    else:
        cv2.fillPoly(mask, [_polygon(kind, cx, cy, size, angle)], 1, cv2.LINE_8)
    return mask.astype(bool)


def render_shapes(
    rng: np.random.Generator,
    image_size: tuple[int, int] = (128, 128),
    size_range: tuple[int, int] = (12, 60),
    max_objects: int = 6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image: ``(uint8 RGB (H, W, 3), float32 boxes (K, 4) xyxy, int64 labels (K,),
    bool visible masks (K, H, W))``, K >= 1."""
    h, w = image_size
    lo, hi = size_range
    hi = min(hi, min(h, w) - 4)
    if not 2 <= lo <= hi:
        raise ValueError(f"shape size range {size_range} does not fit a {w}x{h} image")
    img = _texture(rng, h, w)
    masks: list[np.ndarray] = []
    labels: list[int] = []
    colours: list[tuple[int, int, int]] = []
    hues: list[float] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        for _ in range(MAX_TRIES):
            m = _mask(SHAPE_CLASSES[label], rng, h, w, lo, hi)
            if m.sum() < 16:
                continue
            # Reject if it would hide too much of an object already placed.
            if all((v & ~m).sum() >= MIN_VISIBLE * v.sum() for v in masks):
                masks = [v & ~m for v in masks]
                masks.append(m)
                labels.append(label)
                hue, rgb = _colour(rng, hues)
                hues.append(hue)
                colours.append(rgb)
                break
    out = np.rint(img).astype(np.uint8)
    for m, col in zip(masks, colours):
        out[m] = col
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return out, boxes, np.array(labels, np.int64), np.stack(masks)


class ShapesDetection(DetectionDataset):
    """The shapes set as a dataset (sample contract of ``base``); no files involved."""

    def __init__(
        self,
        split: str = "train",
        num_images: int = 4000,
        image_size: tuple[int, int] = (128, 128),
        seed: int = 0,
        size_range: tuple[int, int] = (12, 60),
        max_objects: int = 6,
        transform: Any = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if num_images <= 0:
            raise ValueError(f"shapes[{split}]: num_images must be > 0, got {num_images}")
        if split == "train" and num_images > VAL_OFFSET:
            raise ValueError(f"shapes: num_train must be <= {VAL_OFFSET} (val starts there)")
        self.name = f"shapes[{split}]"
        self.split, self.seed, self.transform = split, seed, transform
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.size_range, self.max_objects = size_range, max_objects
        self.first = VAL_OFFSET if split == "val" else 0
        self.num_images = num_images
        self.categories = [(i + 1, n) for i, n in enumerate(SHAPE_CLASSES)]
        self._records: list[ImageRecord] | None = None

    def __len__(self) -> int:
        return self.num_images

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:func:`render_shapes` of item ``index`` (image, boxes, labels, masks)."""
        if not 0 <= index < self.num_images:
            raise IndexError(f"{self.name}: index {index} out of range [0, {self.num_images})")
        rng = np.random.default_rng((self.seed, self.first + index))
        return render_shapes(rng, self.image_size, self.size_range, self.max_objects)

    def _record(self, index: int, boxes: np.ndarray, labels: np.ndarray) -> ImageRecord:
        h, w = self.image_size
        iid = self.first + index
        ids = [iid * 100 + k + 1 for k in range(len(boxes))]  # <= 6 objects, unique
        return ImageRecord(iid, f"{iid:07d}.png", h, w, boxes, labels, ids)

    def load(self, index: int) -> tuple[np.ndarray, ImageRecord]:
        image, boxes, labels, _ = self.render(index)
        return image, self._record(index, boxes, labels)

    @property
    def records(self) -> list[ImageRecord]:  # type: ignore[override]
        """All records (renders every image once; used for the evaluation ground truth)."""
        if self._records is None:
            self._records = [self.load(i)[1] for i in range(self.num_images)]
        return self._records


@DATASETS.register("shapes_detection", params=ShapesParams)
def build_shapes(params: ShapesParams | None = None, split: str = "train") -> ShapesDetection:
    """The ``split`` of the shapes set, with CenterNet augmentation on ``train``."""
    p = params or ShapesParams()
    return ShapesDetection(
        split,
        p.num_train if split == "train" else p.num_val,
        p.image_size,
        p.seed,
        (p.min_size, p.max_size),
        p.max_objects,
        transform=build_transform(p.image_size, split == "train", p.augment),
    )


def dump_shapes_coco(
    out_dir: str | Path, split: str = "val", num: int = 200, seed: int = 0
) -> SplitPaths:
    """Write ``num`` images of a shapes split as ``out_dir/<split>/<id>.png`` plus the COCO
    json ``out_dir/<split>.json``; returns their :class:`SplitPaths` for :class:`CocoDetection`.
    The json is the same ground truth :meth:`coco_ground_truth` gives (ids included)."""
    ds = ShapesDetection(split, num, seed=seed)
    image_dir = Path(out_dir) / split
    image_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(num):
        image, rec = ds.load(i)
        cv2.imwrite(str(image_dir / rec.path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        records.append(rec)
    ds._records = records
    gt = ds.coco_ground_truth()
    gt["info"] = {"description": f"pointforge shapes detection set, split {split}, seed {seed}"}
    json_path = Path(out_dir) / f"{split}.json"
    json_path.write_text(json.dumps(gt))
    return SplitPaths(str(json_path), str(image_dir))
