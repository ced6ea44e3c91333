"""The built-in classification dataset: scikit-learn's handwritten digits (UCI optdigits).

1797 grey 8×8 images of the digits 0-9 (about 180 per class), shipped inside scikit-learn, so
training needs no download. Pixel values 0-16 are rescaled to ``uint8`` 0-255; upsampling to
``data.image_size`` happens in the transform (``v2.Resize``), like any other image source.
There is no official test split, so "val" is a seeded stratified hold-out
(:func:`~pointforge.data.datasets.splits.stratified_split`) that training never sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.datasets.splits import stratified_split
from pointforge.registry import DATASETS

DIGITS_MAX_VALUE = 16  # load_digits pixels are counts of set pixels in 4×4 blocks, 0..16


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as ``uint8 (N, 8, 8)`` images in 0..255 and ``int64 (N,)`` labels."""
    from sklearn.datasets import load_digits  # heavy import, only when the dataset is used

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / DIGITS_MAX_VALUE)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


@dataclass(frozen=True)
class DigitsParams:
    """``data.*`` keys of ``digits`` (scikit-learn's 8x8 digits, shipped with it)."""

    # Network input size; the 8x8 digits are upsampled (16x16 with the small-input ResNet stem).
    image_size: tuple[int, ...] = (16, 16)
    # Fraction of each class held out for evaluation; 0.2 = the common 80/20 hold-out.
    val_fraction: float = 0.2
    # Seed of that split, separate from ``seed`` so that runs with different training seeds are
    # scored on the same held-out images.
    split_seed: int = 0


@DATASETS.register("digits", params=DigitsParams)
class DigitsDataset(Dataset):
    """One split of the digits; items are ``{"image": transform(uint8 (1, 8, 8)), "label": int}``.

    Without a transform the image is the raw ``uint8 (1, 8, 8)`` tensor.
    """

    classes = [str(i) for i in range(10)]

    def __init__(
        self,
        split: str = "train",
        val_fraction: float = 0.2,
        split_seed: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        root: str | None = None,
    ) -> None:
        if root is not None:
            raise ValueError(
                f"data.root is set to {root!r}, but the digits dataset is built in and reads no "
                "folder; use data.name=image_folder for a folder of images"
            )
        images, labels = load_digit_images()
        self.indices = stratified_split(labels, split, val_fraction, split_seed)
        self.images = torch.from_numpy(images[self.indices]).unsqueeze(1)  # (M, 1, 8, 8)
        self.labels = labels[self.indices]
        self.split = split
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": int(self.labels[index])}
