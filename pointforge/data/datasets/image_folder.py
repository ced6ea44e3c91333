"""Classification data from a class-per-subfolder tree, read with OpenCV.

Two layouts are accepted (class ids are the sorted subfolder names, as in torchvision's
``ImageFolder``)::

    root/<class>/**/<image>                     one tree: "val" is a seeded stratified hold-out
    root/train/<class>/... + root/val/<class>/... a fixed split, used as it is

Listing is eager and cheap (file names only) so a missing or empty folder fails before training
with the folder named; decoding is lazy, and a file OpenCV cannot decode is reported by path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.datasets.splits import SPLITS, stratified_split
from pointforge.registry import DATASETS

# Extensions OpenCV's imread decodes in every standard build.
IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".jpeg", ".jpg", ".png", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp"}
)


class ImageFolderError(ValueError):
    """A dataset folder that is missing, empty or inconsistent; the message names it."""


def list_classes(tree: Path) -> list[str]:
    """Sorted names of the (non-hidden) subfolders of ``tree``."""
    if not tree.is_dir():
        what = "does not exist" if not tree.exists() else "is not a directory"
        raise ImageFolderError(f"image folder {tree} {what} (config key data.root)")
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ImageFolderError(
            f"image folder {tree} has no class subfolders; expected {tree}/<class>/<image>"
        )
    return classes


def list_samples(tree: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    """Image paths under ``tree/<class>/`` (recursive, sorted) and their ``int64 (N,)`` labels.

    Every class folder must hold at least one image: an empty class would silently shift the
    meaning of the classifier's outputs, so it is an error naming the folder.
    """
    paths: list[Path] = []
    labels: list[int] = []
    empty: list[str] = []
    for label, name in enumerate(classes):
        folder = tree / name
        files = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:
            empty.append(str(folder))
        paths += files
        labels += [label] * len(files)
    if empty:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ImageFolderError(f"no images ({exts}) in class folder(s): {', '.join(empty)}")
    return paths, np.asarray(labels, dtype=np.int64)


def read_image(path: Path) -> torch.Tensor:
    """Decode ``path`` to ``uint8 (C, H, W)``, C = 1 for grey files and 3 (RGB) otherwise.

    ``IMREAD_ANYCOLOR`` keeps grey files grey (no needless 3× copy) and converts 16-bit files
    to 8 bit; OpenCV's BGR order is turned into RGB, the order normalisation statistics use.
    """
    image = cv2.imread(str(path), cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise OSError(f"cannot read image file {path}: unreadable, corrupt or not an image")
    if image.ndim == 2:
        image = image[:, :, None]
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


@dataclass(frozen=True)
class ImageFolderParams:
    """``data.*`` keys of ``image_folder`` (``root/<class>/<image>``)."""

    # The class-per-subfolder image tree (required).
    root: str | None = None
    # Network input size (torchvision's ImageNet reference: 224x224).
    image_size: tuple[int, ...] = (224, 224)
    # Fraction of each class held out when the tree has no train/ and val/ subfolders.
    val_fraction: float = 0.2
    # Seed of that split (independent of the training seed).
    split_seed: int = 0


@DATASETS.register("image_folder", params=ImageFolderParams)
class ImageFolderDataset(Dataset):
    """One split of an image folder; items are ``{"image": transform(uint8 (C, H, W)),
    "label": int}`` (the raw decoded tensor without a transform)."""

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        val_fraction: float = 0.2,
        split_seed: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        if root is None:
            raise ImageFolderError("data.name=image_folder needs data.root (the image folder)")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        root = Path(root)
        if (root / "train").is_dir() and (root / "val").is_dir():
            self.classes = list_classes(root / "train")
            val_classes = list_classes(root / "val")
            unknown = sorted(set(val_classes) - set(self.classes))
            if unknown:
                raise ImageFolderError(
                    f"{root / 'val'} has classes missing from {root / 'train'}: {unknown}"
                )
            if split == "train":
                self.paths, self.labels = list_samples(root / "train", self.classes)
            else:  # val may lack classes; its ids still follow train's order
                self.paths, self.labels = self._subset_present(root / "val", val_classes)
        else:
            self.classes = list_classes(root)
            paths, labels = list_samples(root, self.classes)
            keep = stratified_split(labels, split, val_fraction, split_seed)
            if len(keep) == 0:
                raise ImageFolderError(
                    f"image folder {root} leaves no images for the {split!r} split "
                    f"(data.val_fraction={val_fraction}); add images or a train/ + val/ layout"
                )
            self.paths, self.labels = [paths[i] for i in keep], labels[keep]
        self.root = root
        self.split = split
        self.transform = transform

    def _subset_present(self, tree: Path, present: list[str]) -> tuple[list[Path], np.ndarray]:
        paths, local = list_samples(tree, present)
        to_global = np.asarray([self.classes.index(c) for c in present], dtype=np.int64)
        return paths, to_global[local]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = read_image(self.paths[index])
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": int(self.labels[index])}
