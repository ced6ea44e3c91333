"""Synthetic Shapes as a map-style dataset whose samples are pure functions of the index.

Why: sample ``i`` of split ``s`` is drawn from ``default_rng([seed, SPLIT_ID[s], i])``, so it is
the same in any worker, process, order or machine. That gives disjoint train/val/test streams,
a test set identical everywhere, and exact resume without storing data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.shapes.render import check_primitives, render_shapes
from pointforge.data.transforms.photometric import PhotometricConfig, photometric_augment
from pointforge.geometry.homography import (
    HomographyConfig,
    filter_points,
    sample_homography,
    valid_mask,
    warp_images,
    warp_points,
)
from pointforge.registry import DATASETS

SPLIT_ID = {"train": 0, "val": 1, "test": 2}
DEFAULT_SIZE = {"train": 10**9, "val": 500, "test": 1000}


@DATASETS.register("synthetic_shapes")
class SyntheticShapes(Dataset):
    """Procedural Synthetic Shapes (DESIGN.md §3), rendered on the fly.

    ``__getitem__`` → ``{"image": (1, H, W) float [0, 1], "points": (K, 2) float (x, y),
    "valid_mask": (1, H, W) float, "index": int}``. Order: render → homographic warp (image,
    points, mask) → photometric augmentation.
    """

    def __init__(self, split: str = "train", size: int | None = None,
                 image_size: Sequence[int] = (120, 160), seed: int = 0,
                 primitives: Sequence[str] | None = None,
                 photometric: PhotometricConfig | None = None,
                 homographic: HomographyConfig | None = None) -> None:
        if split not in SPLIT_ID:
            raise ValueError(f"SyntheticShapes: unknown split '{split}'; valid: "
                             f"{', '.join(SPLIT_ID)}")
        if size is not None and size <= 0:
            raise ValueError(f"SyntheticShapes: size must be > 0, got {size}")
        self.split = split
        self.size = DEFAULT_SIZE[split] if size is None else size
        self.height, self.width = (int(s) for s in image_size)
        self.seed = seed
        self.primitives = check_primitives(primitives)
        self.photometric = photometric if photometric is not None and photometric.enabled else None
        self.homographic = homographic if homographic is not None and homographic.enabled else None

    def __len__(self) -> int:
        return self.size

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.size:
            raise IndexError(f"SyntheticShapes({self.split}): index {index} out of range")
        return np.random.default_rng([self.seed, SPLIT_ID[self.split], index])

    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self._rng(index)
        image, points = render_shapes(rng, self.height, self.width, self.primitives)
        mask = np.ones((self.height, self.width), np.float32)
        if self.homographic is not None:
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            H = sample_homography(1, self.height, self.width, self.homographic, g)
            img_t = torch.from_numpy(image).float()[None, None]
            image = warp_images(img_t, H)[0, 0].round().clamp(0, 255).byte().numpy()
            mask_t = valid_mask(H, self.height, self.width, self.homographic.valid_border_margin)
            mask = mask_t[0, 0].numpy()
            if len(points):
                p = warp_points(torch.from_numpy(points)[None], H)[0]
                keep = filter_points(p, self.height, self.width)
                p = p[keep]
                # Drop points that land in the (eroded) invalid border.
                ix = p.round().long()
                keep = mask_t[0, 0, ix[:, 1], ix[:, 0]] > 0.5
                points = p[keep].numpy().astype(np.float32)
        if self.photometric is not None:
            image = photometric_augment(image, rng, self.photometric)
        return image, points.reshape(-1, 2).astype(np.float32), mask

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The final uint8 ``(H, W)`` image and float32 ``(K, 2)`` points of sample ``index``."""
        image, points, _ = self._sample(index)
        return image, points

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, points, mask = self._sample(index)
        return {
            "image": torch.from_numpy(image).float().div_(255.0)[None],
            "points": torch.from_numpy(points),
            "valid_mask": torch.from_numpy(np.ascontiguousarray(mask))[None],
            "index": index,
        }
