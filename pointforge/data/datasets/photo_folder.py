"""Unlabelled photos from a folder tree: the input of homographic adaptation and SuperPoint.

Why a dataset of its own (not the classification ``image_folder``): there are no classes, every
image is turned grey and resized to one network size, and its resize factors are kept so that
labels can be mapped back to the original photo. Listing is eager and cheap (file names only,
sorted, so the index of a file is stable and an export can resume by index); decoding is lazy.

A file that is empty, truncated or undecodable (:func:`pointforge.data.image_io.read_image`) is
named. With ``on_bad_image="error"`` it raises
:class:`BadImageError`; with ``"skip"`` the sample is ``None`` (a warning names the file), and
:func:`collate_photos` drops it, so the consumer can count what was skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.image_io import UnreadableImageError, read_image
from pointforge.registry import DATASETS

log = logging.getLogger("pointforge")

# The photo formats of the public SuperPoint data (COCO jpg, HPatches ppm) plus png/bmp.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
BAD_IMAGE_POLICIES = ("error", "skip")


class BadImageError(ValueError):
    """A photo that cannot be decoded, or a folder without photos; the message names it."""


@dataclass(frozen=True)
class Photo:
    """One decoded, resized photo.

    ``image``: ``(1, H, W)`` float32 in [0, 1] at the configured size. ``scale``: ``(sx, sy)``
    with ``x_resized = sx·(x + ½) − ½`` (``cv2.resize`` area alignment, pixel centres at
    integers); ``orig_size``: ``(h, w)`` of the file. ``path``: relative to the folder (POSIX).
    """

    index: int
    path: str
    image: torch.Tensor
    orig_size: tuple[int, int]
    scale: tuple[float, float]


def list_photos(root: str | Path) -> list[Path]:
    """Every photo under ``root`` (recursive), sorted by relative path; errors name ``root``."""
    root = Path(root)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise BadImageError(f"image folder {root} {what}")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise BadImageError(f"image folder {root} holds no images ({', '.join(PHOTO_SUFFIXES)})")
    return files


@dataclass(frozen=True)
class PhotoFolderParams:
    """``data.*`` keys of ``photo_folder`` (the images of ``pointforge export-labels``)."""

    # The photo folder (export-labels' --images overrides it).
    root: str | None = None
    # Photos are turned grey and resized to this size (SuperPoint's 240x320).
    image_size: tuple[int, ...] = (240, 320)
    # A file that cannot be decoded (or is truncated): error = stop and name it (default:
    # never lose data silently); skip = log its name, leave it out, log how many were skipped.
    on_bad_image: str = field(default="error", metadata={"choices": ("error", "skip")})


@DATASETS.register("photo_folder", params=PhotoFolderParams)
class PhotoFolder(Dataset):
    """Grey photos of ``root`` resized to ``image_size`` ``(H, W)``; sample ``i`` is a
    :class:`Photo` (or ``None`` for an undecodable file when ``on_bad_image="skip"``)."""

    def __init__(
        self,
        root: str | Path,
        image_size: Sequence[int] = (240, 320),
        on_bad_image: str = "error",
    ) -> None:
        if on_bad_image not in BAD_IMAGE_POLICIES:
            raise ValueError(
                f"on_bad_image must be one of {list(BAD_IMAGE_POLICIES)}, got {on_bad_image!r}"
            )
        if len(image_size) != 2 or any(int(s) <= 0 for s in image_size):
            raise ValueError(f"image_size must be [height, width] > 0, got {list(image_size)}")
        self.root = Path(root)
        self.files = list_photos(self.root)
        self.height, self.width = (int(s) for s in image_size)
        self.on_bad_image = on_bad_image

    def __len__(self) -> int:
        return len(self.files)

    def relative_path(self, index: int) -> str:
        return self.files[index].relative_to(self.root).as_posix()

    def read(self, index: int) -> tuple[np.ndarray, tuple[int, int]] | None:
        """The photo resized to the configured size as uint8 ``(H, W)``, and its file's
        ``(h, w)``; ``None`` for an undecodable file under ``on_bad_image="skip"``."""
        try:
            grey = read_image(self.files[index], grey=True)
        except UnreadableImageError as exc:
            if self.on_bad_image == "error":
                raise BadImageError(f"{exc}; set data.on_bad_image=skip to leave it out") from None
            log.warning("skipping %s", exc)
            return None
        resized = cv2.resize(grey, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return resized, grey.shape

    def __getitem__(self, index: int) -> Photo | None:
        read = self.read(index)
        if read is None:
            return None
        resized, (h, w) = read
        image = torch.from_numpy(resized).to(torch.float32).div_(255.0)[None]
        return Photo(
            index, self.relative_path(index), image, (h, w), (self.width / w, self.height / h)
        )


def collate_photos(samples: list[Photo | None]) -> tuple[list[Photo], torch.Tensor | None]:
    """Drop skipped (``None``) samples; stack the rest to ``(B, 1, H, W)`` (``None`` if empty)."""
    kept = [s for s in samples if s is not None]
    return kept, (torch.stack([s.image for s in kept]) if kept else None)


def write_sample_photos(folder: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """Write scikit-image's bundled sample photos (no download) as PNGs into ``folder``.

    The default demo/test input of homographic adaptation; ``names`` picks a subset of
    :data:`pointforge.data.datasets.homography_pairs.SKIMAGE_PHOTOS`.
    """
    from pointforge.data.datasets.homography_pairs import SKIMAGE_PHOTOS
    from pointforge.data.sample_photos import write_photos

    return write_photos(folder, list(names or SKIMAGE_PHOTOS), with_crops=False)
