"""The "synthetic" ReID set: procedurally drawn people seen by several cameras.

Why: tests and the quickstart need an identity set that exists without a download, has the
structure of a real one (identities seen by several cameras, disjoint train and test
identities, query/gallery across cameras) and is not solvable by colour alone.

- **identity** (seeded by ``(seed, pid)``): skin and hair colour, hair length, torso colour
  with a pattern (plain, horizontal/vertical stripes, checks, two-tone), trousers / shorts /
  skirt colour, shoes, an optional backpack or shoulder bag, body width and height;
- **camera** (seeded by ``(seed, camera)``): viewpoint side (a horizontal flip, which also moves
  the bag to the other side), shear, rotation, scale, illumination gain, colour balance and a
  background palette;
- **image** (seeded by ``(seed, pid, camera, instance)``): position and size jitter, leg stride,
  background clutter, a partial occluder (probability ``occlusion_prob``) and sensor noise.

Item ``i`` of a split is always the same image. Train identities are ``1..T``, test identities
``T+1..T+E``; each test identity has ``queries_per_camera`` query images per camera and
``images_per_camera`` other gallery images per camera, so every query has matches from the
other cameras. The default size is 128×64 rather than BoT's 256×128: the figures' finest
detail (stripes, the bag) is 3-4 px at that size, and a 4× smaller input makes a CPU training
run of the quickstart 4× faster (ResNet-18 with last stride 1 still gives an 8×4 map).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.tasks.reid.data.image_set import SPLITS, image_to_tensor

_IDENTITY, _CAMERA, _IMAGE = 0, 1, 2  # RNG sub-streams
SKIN_TONES = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36))
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "twotone")
LEGS = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder")


@dataclass(frozen=True)
class SyntheticReIDParams:
    """Size and rendering of the synthetic identity set (keys under ``data.``)."""

    num_train_ids: int = 64  # identities 1..64: enough for P=16 batches over 4 "epochs"
    num_test_ids: int = 32  # identities 65..96, never seen in training
    num_cameras: int = 4  # Market-1501 has 6, DukeMTMC-reID 8; 4 keeps the set small
    images_per_camera: int = 4  # train and gallery images per identity and camera
    queries_per_camera: int = 1  # Market-1501 protocol: one query per identity and camera
    height: int = 128  # rendered size; see the module docstring for why not 256×128
    width: int = 64
    occlusion_prob: float = 0.3  # share of images with a partial occluder
    seed: int = 0
    # The network input [H, W] the rendered crops are resized to (read by the task's
    # transform, not by the renderer); null = BoT's 256×128 (pointforge/tasks/reid/options.py).
    image_size: tuple[int, int] | None = None


def _colour(rng: np.random.Generator, sat: tuple[float, float] = (0.4, 1.0)) -> np.ndarray:
    """A random RGB colour from HSV with saturation in ``sat`` and value 0.25-1."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(64, 255)]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def identity_spec(seed: int, pid: int) -> dict[str, Any]:
    """The appearance of identity ``pid`` (see the module docstring)."""
    rng = np.random.default_rng([seed, _IDENTITY, pid])
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=np.float64)
    return {
        "skin": skin + rng.normal(0, 8, 3),
        "hair": _colour(rng, (0.0, 0.6)) * rng.uniform(0.2, 0.7),
        "long_hair": bool(rng.random() < 0.4),
        "torso": _colour(rng),
        "pattern": PATTERNS[rng.integers(len(PATTERNS))],
        "pattern_colour": _colour(rng),
        "stripe": int(rng.integers(3, 6)),
        "legs": _colour(rng, (0.0, 0.8)),
        "leg_style": LEGS[rng.integers(len(LEGS))],
        "shoes": _colour(rng, (0.0, 0.5)) * 0.6,
        "bag": BAGS[rng.integers(len(BAGS))],
        "bag_colour": _colour(rng),
        "build": rng.uniform(0.8, 1.2),
        "stature": rng.uniform(0.9, 1.05),
    }


def camera_spec(seed: int, camera: int) -> dict[str, Any]:
    """Viewpoint, geometry and colour rendering of camera ``camera``."""
    rng = np.random.default_rng([seed, _CAMERA, camera])
    return {
        "flip": camera % 2 == 1,
        "shear": rng.uniform(-0.15, 0.15),
        "rotation": rng.uniform(-6.0, 6.0),
        "scale": rng.uniform(0.8, 1.0),
        "gain": rng.uniform(0.6, 1.3),
        "balance": rng.uniform(0.8, 1.2, 3),
        "background": _colour(rng, (0.0, 0.4)),
    }


def _draw_person(spec: dict[str, Any], h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """The figure on a black ``(h, w, 3)`` canvas; its mask is where the canvas is non-zero."""
    img = np.zeros((h, w, 3), np.float64)
    cx, top = w / 2.0, 0.05 * h
    tall = 0.9 * h * spec["stature"]
    y = lambda f: round(top + f * tall)  # noqa: E731 - body coordinates as fractions
    half = 0.18 * w * spec["build"]
    aa = cv2.LINE_AA

    def rect(x0: float, y0: int, x1: float, y1: int, colour: np.ndarray) -> None:
        cv2.rectangle(img, (int(x0), y0), (int(x1), y1), colour.tolist(), -1, aa)

    if spec["bag"] == "backpack":  # seen from the side: a block behind the back
        rect(cx - half - 0.12 * w, y(0.2), cx - half + 2, y(0.45), spec["bag_colour"])
    if spec["long_hair"]:
        rect(cx - 0.1 * w, y(0.06), cx + 0.1 * w, y(0.24), spec["hair"])
    # legs, with a per-image stride
    stride = rng.uniform(0.0, 0.08) * w
    leg_w = 0.13 * w * spec["build"]
    for side in (-1, 1):
        x0 = cx + side * (0.02 * w + leg_w / 2) - leg_w / 2
        foot = x0 + side * stride
        pts = np.array(
            [[x0, y(0.52)], [x0 + leg_w, y(0.52)], [foot + leg_w, y(0.95)], [foot, y(0.95)]]
        )
        cv2.fillConvexPoly(img, pts.astype(np.int32), spec["skin"].tolist(), aa)
        cut = 0.95 if spec["leg_style"] == "trousers" else 0.68
        pts_c = pts.copy()
        pts_c[2:, 1] = y(cut)
        pts_c[2, 0] = x0 + leg_w + side * stride * (cut - 0.52) / 0.43
        pts_c[3, 0] = x0 + side * stride * (cut - 0.52) / 0.43
        cv2.fillConvexPoly(img, pts_c.astype(np.int32), spec["legs"].tolist(), aa)
        rect(foot - 1, y(0.95), foot + leg_w + 2, y(1.0), spec["shoes"])
    if spec["leg_style"] == "skirt":
        skirt = np.array([[cx - half, y(0.5)], [cx + half, y(0.5)], [cx + half * 1.4, y(0.72)],
                          [cx - half * 1.4, y(0.72)]])  # fmt: skip
        cv2.fillConvexPoly(img, skirt.astype(np.int32), spec["legs"].tolist(), aa)
    # arms and torso
    arm_w = 0.09 * w
    rect(cx - half - arm_w, y(0.18), cx - half, y(0.48), spec["torso"] * 0.85)
    rect(cx + half, y(0.18), cx + half + arm_w, y(0.48), spec["torso"] * 0.85)
    rect(cx - half, y(0.16), cx + half, y(0.53), spec["torso"])
    _pattern(img, spec, (int(cx - half), y(0.16), int(cx + half), y(0.53)))
    # head and hair
    r = 0.075 * h
    cv2.circle(img, (int(cx), y(0.085)), int(r), spec["skin"].tolist(), -1, aa)
    cv2.ellipse(img, (int(cx), y(0.07)), (int(r), int(r * 0.7)), 0, 180, 360,
                spec["hair"].tolist(), -1, aa)  # fmt: skip
    if spec["bag"] == "shoulder":
        cv2.line(img, (int(cx - half), y(0.17)), (int(cx + half), y(0.45)),
                 spec["bag_colour"].tolist(), 2, aa)  # fmt: skip
        rect(cx + half - 2, y(0.42), cx + half + 0.14 * w, y(0.56), spec["bag_colour"])
    return np.clip(img, 1, 255) * (img.sum(axis=2, keepdims=True) > 0)


def _pattern(img: np.ndarray, spec: dict[str, Any], box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    colour, step = spec["pattern_colour"].tolist(), spec["stripe"]
    kind = spec["pattern"]
    if kind == "hstripes":
        for yy in range(y0, y1, 2 * step):
            cv2.rectangle(img, (x0, yy), (x1, min(yy + step - 1, y1)), colour, -1)
    elif kind == "vstripes":
        for xx in range(x0, x1, 2 * step):
            cv2.rectangle(img, (xx, y0), (min(xx + step - 1, x1), y1), colour, -1)
    elif kind == "checks":
        for yy in range(y0, y1, step):
            for xx in range(x0 + ((yy - y0) // step % 2) * step, x1, 2 * step):
                cv2.rectangle(img, (xx, yy), (min(xx + step - 1, x1), min(yy + step - 1, y1)),
                              colour, -1)  # fmt: skip
    elif kind == "twotone":
        cv2.rectangle(img, (x0, (y0 + y1) // 2), (x1, y1), colour, -1)


def _background(cam: dict[str, Any], h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """The camera's background colour with a vertical gradient and random clutter."""
    ramp = np.linspace(0.8, 1.2, h)[:, None, None]
    bg = np.broadcast_to(cam["background"] * ramp, (h, w, 3)).copy()
    for _ in range(int(rng.integers(3, 9))):
        colour = (cam["background"] * rng.uniform(0.4, 1.6) + rng.normal(0, 30, 3)).tolist()
        x, yy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(bg, (x, yy), (x + int(rng.integers(4, w // 2)),
                          yy + int(rng.integers(4, h // 3))), colour, -1)  # fmt: skip
        else:
            cv2.line(bg, (x, yy), (int(rng.integers(0, w)), int(rng.integers(0, h))), colour, 2)
    return bg


def render_image(params: SyntheticReIDParams, pid: int, camera: int, instance: int) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB image ``instance`` of identity ``pid`` seen by ``camera``."""
    h, w = params.height, params.width
    spec, cam = identity_spec(params.seed, pid), camera_spec(params.seed, camera)
    rng = np.random.default_rng([params.seed, _IMAGE, pid, camera, instance])
    person = _draw_person(spec, h, w, rng)
    if cam["flip"]:
        person = person[:, ::-1]
    scale = cam["scale"] * rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), cam["rotation"] + rng.normal(0, 1.5), scale)
    m[0, 1] += cam["shear"]
    m[0, 2] += rng.uniform(-0.08, 0.08) * w - cam["shear"] * h / 2
    m[1, 2] += rng.uniform(-0.04, 0.04) * h + (1 - scale) * h * 0.4
    warped = cv2.warpAffine(person, m, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine((person.sum(axis=2) > 0).astype(np.float64), m, (w, h))[..., None]
    img = _background(cam, h, w, rng) * (1 - mask) + warped * mask
    if rng.random() < params.occlusion_prob:  # an object in front: bottom or one side
        colour = _colour(rng, (0.0, 0.7)).tolist()
        if rng.random() < 0.5:
            cv2.rectangle(img, (0, int(h * rng.uniform(0.6, 0.8))), (w, h), colour, -1)
        else:
            x = int(w * rng.uniform(0.55, 0.75))
            x0, x1 = (x, w) if rng.random() < 0.5 else (0, w - x)
            cv2.rectangle(img, (x0, int(h * 0.2)), (x1, h), colour, -1)
    img = img * cam["gain"] * cam["balance"] * rng.uniform(0.9, 1.1)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


class SyntheticReID(Dataset):
    """One split (train, query or gallery) of the synthetic identity set.

    Items as the file-based sets: ``{"image", "pid", "camid", "index"}``; ``pid`` is
    contiguous for train and the original identity for query/gallery.
    """

    def __init__(
        self,
        split: str,
        params: SyntheticReIDParams | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"ReID split must be one of {SPLITS}, got {split!r}")
        p = params or SyntheticReIDParams()
        if min(p.num_train_ids, p.num_test_ids, p.num_cameras, p.images_per_camera) < 1 or (
            p.queries_per_camera < 1
        ):
            raise ValueError(f"synthetic ReID set: all counts must be >= 1, got {p}")
        if p.num_cameras < 2:
            raise ValueError("synthetic ReID set: queries need matches from another camera; "
                             "data.num_cameras must be >= 2")  # fmt: skip
        self.params, self.split, self.transform = p, split, transform
        if split == "train":
            ids, instances = range(1, p.num_train_ids + 1), range(p.images_per_camera)
        else:
            ids = range(p.num_train_ids + 1, p.num_train_ids + p.num_test_ids + 1)
            n_q = p.queries_per_camera
            instances = range(n_q) if split == "query" else range(n_q, n_q + p.images_per_camera)
        # (original pid, camera, instance) of every item
        self.items = [(pid, c, i) for pid in ids for c in range(p.num_cameras) for i in instances]
        original = np.array([pid for pid, _, _ in self.items], dtype=np.int64)
        self.pids = original - 1 if split == "train" else original
        self.camids = np.array([c for _, c, _ in self.items], dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return self.params.num_train_ids

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> torch.Tensor:
        """The ``uint8 (3, H, W)`` RGB image of item ``index``."""
        return image_to_tensor(render_image(self.params, *self.items[index]))

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.load(index)
        out = self.transform(image) if self.transform else image.float() / 255.0
        return {
            "image": out,
            "pid": torch.tensor(int(self.pids[index]), dtype=torch.int64),
            "camid": torch.tensor(int(self.camids[index]), dtype=torch.int64),
            "index": index,
        }
