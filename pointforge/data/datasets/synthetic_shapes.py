"""Synthetic Shapes as a map-style dataset whose samples are pure functions of the index.

Why: sample ``i`` of split ``s`` is drawn from ``default_rng([seed, SPLIT_ID[s], i])``, so it is
the same in any worker, process, order or machine. That gives disjoint train/val/test streams,
a test set identical everywhere, and exact resume without storing data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.shapes.render import check_primitives, render_shapes
from pointforge.data.transforms.photometric import PhotometricConfig, photometric_augment
from pointforge.geometry.homography import HomographyConfig, sample_homography
from pointforge.registry import DATASETS

SPLIT_ID = {"train": 0, "val": 1, "test": 2}
DEFAULT_SIZE = {"train": 10**9, "val": 500, "test": 1000}
HOMOGRAPHY_CHUNK = 64


def warp_sample(
    image: np.ndarray, points: np.ndarray, H: np.ndarray, margin: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp one uint8 image, its points ``(K, 2)`` and an all-valid mask by ``H`` (3, 3).

    Single-sample CPU path with OpenCV, the same convention as the batched torch functions in
    :mod:`pointforge.geometry.homography` (``out(p) = in(H⁻¹ p)``, integer pixel centres) but
    ~10× cheaper per sample inside a DataLoader worker. Points that leave the image or land in
    the eroded invalid border are dropped.
    """
    h, w = image.shape
    warped = cv2.warpPerspective(
        image, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    mask = cv2.warpPerspective(
        np.ones((h, w), np.uint8),
        H,
        (w, h),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if margin > 0:
        # Default border: the image frame itself is not "invalid source", as in valid_mask().
        mask = cv2.erode(mask, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    if len(points):
        p = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), H)
        p = p.reshape(-1, 2)
        ix = np.round(p).astype(np.int64)
        inside = (p[:, 0] >= 0) & (p[:, 0] <= w - 1) & (p[:, 1] >= 0) & (p[:, 1] <= h - 1)
        inside[inside] = mask[ix[inside, 1], ix[inside, 0]] > 0
        points = p[inside]
    return warped, mask.astype(np.float32), points.astype(np.float32).reshape(-1, 2)


@dataclass(frozen=True)
class SyntheticShapesParams:
    """``data.*`` keys of ``synthetic_shapes`` (procedural, nothing on disk)."""

    # Training resolution of the public MagicPoint recipes (120x160).
    image_size: tuple[int, ...] = (120, 160)
    # Subset of Synthetic Shapes primitives; null = all nine (docs/keypoints.md).
    primitives: tuple[str, ...] | None = None
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    homographic: HomographyConfig = field(default_factory=HomographyConfig)


@DATASETS.register("synthetic_shapes", params=SyntheticShapesParams)
class SyntheticShapes(Dataset):
    """Procedural Synthetic Shapes (docs/keypoints.md), rendered on the fly.

    ``__getitem__`` → ``{"image": (1, H, W) float [0, 1], "points": (K, 2) float (x, y),
    "valid_mask": (1, H, W) float, "index": int}``. Order: render → homographic warp (image,
    points, mask) → photometric augmentation.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        image_size: Sequence[int] = (120, 160),
        seed: int = 0,
        primitives: Sequence[str] | None = None,
        photometric: PhotometricConfig | None = None,
        homographic: HomographyConfig | None = None,
    ) -> None:
        if split not in SPLIT_ID:
            raise ValueError(
                f"SyntheticShapes: unknown split '{split}'; valid: {', '.join(SPLIT_ID)}"
            )
        if size is not None and size <= 0:
            raise ValueError(f"SyntheticShapes: size must be > 0, got {size}")
        self.split = split
        self.size = DEFAULT_SIZE[split] if size is None else size
        self.height, self.width = (int(s) for s in image_size)
        self.seed = seed
        self.primitives = check_primitives(primitives)
        self.photometric = photometric if photometric is not None and photometric.enabled else None
        self.homographic = homographic if homographic is not None and homographic.enabled else None
        self._h_chunk, self._h_cache = -1, np.zeros((0, 3, 3))

    def __len__(self) -> int:
        return self.size

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.size:
            raise IndexError(f"SyntheticShapes({self.split}): index {index} out of range")
        return np.random.default_rng([self.seed, SPLIT_ID[self.split], index])

    def _homography(self, index: int) -> np.ndarray:
        """``(3, 3)`` float64 homography of sample ``index``.

        Homographies are drawn by the batched torch sampler for a chunk of ``HOMOGRAPHY_CHUNK``
        consecutive indices at once (seeded by the chunk, so still a pure function of the
        index); a worker reading consecutive indices pays the sampler's fixed cost once per
        chunk instead of once per sample.
        """
        assert self.homographic is not None
        chunk, offset = divmod(index, HOMOGRAPHY_CHUNK)
        if self._h_chunk != chunk:
            seq = np.random.SeedSequence([self.seed, SPLIT_ID[self.split], chunk, 1])
            g = torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0] >> 1))
            hs = sample_homography(HOMOGRAPHY_CHUNK, self.height, self.width, self.homographic, g)
            self._h_cache, self._h_chunk = hs.double().numpy(), chunk
        return self._h_cache[offset]

    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self._rng(index)
        image, points = render_shapes(rng, self.height, self.width, self.primitives)
        mask = np.ones((self.height, self.width), np.float32)
        if self.homographic is not None:
            image, mask, points = warp_sample(
                image, points, self._homography(index), self.homographic.valid_border_margin
            )
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
