"""Warped pairs of labelled photos: the training data of SuperPoint's joint stage (paper §5).

Each sample is a photo A (grey, resized to the label size), a random homographic view B of it,
the homography ``H`` (A → B pixels), the keypoint labels of both (A's from homographic
adaptation, B's the same points warped, those landing outside B's valid area dropped) and the
valid masks. The descriptor loss pairs cells of A and B through ``H``; the detector losses use
both label sets.

Randomness: the homography is drawn from torch's global RNG and the photometric augmentation
from NumPy's, both of which the engine's loader reseeds from ``(seed, stream position)`` before
every sample (:mod:`pointforge.data.loader`), so a sample is a pure function of its position
and resume is exact without any state here.

The labels must come from ``pointforge export-labels`` on the same folder at the same image
size; anything else (incomplete export, other size, photos without labels) is refused with an
error naming both directories, because training on misaligned labels fails silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.datasets.photo_folder import BadImageError, PhotoFolder
from pointforge.data.datasets.synthetic_shapes import warp_sample
from pointforge.data.label_shards import LabelStore, LabelStoreError
from pointforge.data.transforms.photometric import PhotometricConfig, photometric_augment
from pointforge.geometry.homography import HomographyConfig, sample_homography
from pointforge.registry import DATASETS


@dataclass(frozen=True)
class WarpedPairsParams:
    """``data.*`` keys of ``warped_pairs`` (SuperPoint training pairs of labelled photos)."""

    # The training photos (`pointforge data photos`) and their keypoint labels
    # (`pointforge export-labels`, made at image_size).
    root: str | None = None
    labels: str | None = None
    # Keep only the labels whose adapted score is at least this (null = every stored label).
    # Exporting at a low threshold and choosing here lets one export serve several densities.
    label_threshold: float | None = None
    # Held-out photos of the periodic homography benchmark (null = scikit-image's photos).
    path: str | None = None
    image_size: tuple[int, ...] = (240, 320)
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    homographic: HomographyConfig = field(default_factory=HomographyConfig)


@DATASETS.register("warped_pairs", params=WarpedPairsParams)
class WarpedPairs(Dataset):
    """Labelled photos of ``root`` and random warps of them.

    ``__getitem__`` → ``{"image", "warped_image": (1, H, W) float [0, 1], "homography": (3, 3)
    float32 (A → B), "points": (K, 2), "warped_points": (K', 2) float32 (x, y),
    "valid_mask", "warped_valid_mask": (1, H, W) float, "index": int}``.
    """

    def __init__(
        self,
        root: str | Path,
        labels: str | Path,
        image_size: Sequence[int] = (240, 320),
        photometric: PhotometricConfig | None = None,
        homographic: HomographyConfig | None = None,
        label_threshold: float | None = None,
    ) -> None:
        self.label_threshold = label_threshold
        # Photos the export skipped as undecodable have no labels and are left out below; any
        # other photo must decode now, so "error" (a photo that broke since is named).
        self.photos = PhotoFolder(root, image_size, on_bad_image="error")
        self.store = LabelStore(labels)
        size = (self.photos.height, self.photos.width)
        self.photometric = photometric if photometric is not None and photometric.enabled else None
        self.homographic = homographic if homographic is not None and homographic.enabled else None
        if not self.store.complete:
            raise LabelStoreError(
                f"labels in {labels} are an unfinished export; finish it with "
                f"`pointforge export-labels ... --out {labels} --resume`"
            )
        skipped = set(self.store.skipped)
        self.indices: list[int] = []
        unlabelled: list[str] = []
        for i in range(len(self.photos)):
            rel = self.photos.relative_path(i)
            if rel in self.store:
                self.indices.append(i)
            elif rel not in skipped:
                unlabelled.append(rel)
        if unlabelled:
            raise LabelStoreError(
                f"{len(unlabelled)} photos of {root} have no labels in {labels} (first: "
                f"{unlabelled[:3]}); export the labels of this exact folder"
            )
        if not self.indices:
            raise LabelStoreError(f"no photo of {root} has labels in {labels}")
        label_size = tuple(self.store[self.photos.relative_path(self.indices[0])].size)
        if label_size != size:
            raise LabelStoreError(
                f"labels in {labels} were made at size {list(label_size)} but data.image_size "
                f"is {list(size)}; use the export's size or re-export"
            )

    def __len__(self) -> int:
        return len(self.indices)

    def _photo(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``(H, W)`` photo and its float32 ``(K, 2)`` labels."""
        i = self.indices[index]
        read = self.photos.read(i)
        if read is None:  # only under on_bad_image="skip"; ours is "error", which raises
            raise BadImageError(f"cannot decode {self.photos.files[i]}")
        image = read[0]
        label = self.store[self.photos.relative_path(i)]
        points = np.asarray(label.keypoints, np.float32).reshape(-1, 2)
        if self.label_threshold is not None:
            points = points[np.asarray(label.scores) >= self.label_threshold]
        return image, points

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"WarpedPairs: index {index} out of range ({len(self)} photos)")
        image, points = self._photo(index)
        h, w = image.shape
        if self.homographic is not None:
            H = sample_homography(1, h, w, self.homographic)[0].double().numpy()
            margin = self.homographic.valid_border_margin
        else:
            H, margin = np.eye(3), 0
        warped, warped_mask, warped_points = warp_sample(image, points, H, margin)
        if self.photometric is not None:
            rng = np.random.default_rng(int(np.random.randint(0, 2**63 - 1, dtype=np.int64)))
            image = photometric_augment(image, rng, self.photometric)
            warped = photometric_augment(warped, rng, self.photometric)
        return {
            "image": torch.from_numpy(image).float().div_(255.0)[None],
            "warped_image": torch.from_numpy(warped).float().div_(255.0)[None],
            "homography": torch.from_numpy(H.astype(np.float32)),
            "points": torch.from_numpy(points),
            "warped_points": torch.from_numpy(warped_points),
            "valid_mask": torch.ones(1, h, w),
            "warped_valid_mask": torch.from_numpy(np.ascontiguousarray(warped_mask))[None],
            "index": index,
        }
