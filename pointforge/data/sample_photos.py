"""The offline photo pool: real photos that ship inside scikit-image and scikit-learn.

Why: SuperPoint's second stage needs real photos (homographic adaptation labels them, joint
training warps them), and nothing can be downloaded at run time. scikit-image bundles 17
photos we already use for the homography benchmark, plus a stereo pair and a checkerboard;
scikit-learn bundles two photos (``china.jpg``, ``flower.jpg``).

Split: the benchmark photos in :data:`VAL_PHOTOS` are **held out** from training so that the
SuperPoint scores on them are honest; everything else is the training pool. The training pool
is tiny (17 photos), so each photo is also written as five fixed crops (four corners and the
centre, 2/3 of each side): the crops have their own labels (homographic adaptation runs on
each), which multiplies the views the network sees without any randomness to record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pointforge.data.datasets.homography_pairs import SKIMAGE_PHOTOS, to_grey

# Held-out benchmark photos (5 of 17, chosen to span texture, objects, outdoor and indoor).
VAL_PHOTOS = ("astronaut", "coffee", "coins", "gravel", "rocket")
SPLITS = ("train", "val", "all")
# Crops per side fraction: each crop is CROP_FRACTION of the photo's height and width.
CROP_FRACTION = 2 / 3


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return np.asarray(getattr(skimage.data, name)())

    return load


def _stereo(side: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return np.asarray(skimage.data.stereo_motorcycle()[side])

    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return np.asarray(load_sample_images().images[index])

    return load


def photo_sources() -> dict[str, Callable[[], np.ndarray]]:
    """Every bundled photo by name → a loader returning its array (RGB or grey)."""
    sources: dict[str, Callable[[], np.ndarray]] = {n: _skimage(n) for n in SKIMAGE_PHOTOS}
    sources["checkerboard"] = _skimage("checkerboard")
    sources["motorcycle_left"] = _stereo(0)
    sources["motorcycle_right"] = _stereo(1)
    sources["sklearn_china"] = _sklearn(0)
    sources["sklearn_flower"] = _sklearn(1)
    return sources


def split_names(split: str) -> list[str]:
    """Photo names of ``split``: ``train`` (all but :data:`VAL_PHOTOS`), ``val`` or ``all``."""
    if split not in SPLITS:
        raise ValueError(f"unknown photo split {split!r}; choose one of {list(SPLITS)}")
    names = sorted(photo_sources())
    if split == "val":
        return [n for n in names if n in VAL_PHOTOS]
    if split == "train":
        return [n for n in names if n not in VAL_PHOTOS]
    return names


def crops(image: np.ndarray) -> dict[str, np.ndarray]:
    """Five fixed crops (``tl``, ``tr``, ``bl``, ``br``, ``c``) of :data:`CROP_FRACTION` size."""
    h, w = image.shape[:2]
    ch, cw = round(h * CROP_FRACTION), round(w * CROP_FRACTION)
    y0s = {"t": 0, "b": h - ch}
    x0s = {"l": 0, "r": w - cw}
    out = {
        f"{ky}{kx}": image[y0 : y0 + ch, x0 : x0 + cw]
        for ky, y0 in y0s.items()
        for kx, x0 in x0s.items()
    }
    cy, cx = (h - ch) // 2, (w - cw) // 2
    out["c"] = image[cy : cy + ch, cx : cx + cw]
    return out


def write_photos(folder: str | Path, names: list[str], with_crops: bool = False) -> list[Path]:
    """Write the named bundled photos (:func:`photo_sources`) as grey PNGs into ``folder``
    (created); with ``with_crops`` each also gets its five crops (``name_tl.png`` …)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = photo_sources()
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise ValueError(f"unknown bundled photos {unknown}; known: {sorted(sources)}")
    written: list[Path] = []
    for name in names:
        grey = to_grey(sources[name](), name)
        views = {name: grey}
        if with_crops:
            views.update({f"{name}_{k}": v for k, v in crops(grey).items()})
        for stem, img in views.items():
            path = folder / f"{stem}.png"
            if not cv2.imwrite(str(path), np.ascontiguousarray(img)):
                raise OSError(f"cannot write {path}")
            written.append(path)
    return written


def write_photo_split(
    folder: str | Path, split: str = "train", with_crops: bool = True
) -> list[Path]:
    """Write the grey photos of ``split`` (:func:`split_names`) into ``folder``; see
    :func:`write_photos`. Returns the written paths."""
    return write_photos(folder, split_names(split), with_crops)
