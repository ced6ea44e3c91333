"""ReID image sets: a list of ``(path, pid, camid)`` records turned into a Dataset, and the
query + gallery concatenation the evaluator reads.

Items: ``{"image": float32 (3, H, W), "pid": int64, "camid": int64, "index": int}``. ``pid``
is the contiguous training label ``0..N-1`` for a training set and the original identity for
query/gallery (so that queries and gallery agree, and junk ``-1`` / distractors ``0`` keep
their meaning for the metric). Without a transform ``image`` is the RGB photo scaled to
[0, 1]; with one, ``transform`` receives the ``uint8 (3, H, W)`` RGB tensor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

logger = logging.getLogger(__name__)

ON_BAD_IMAGE = ("error", "skip")
SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class ReIDRecord:
    """One image: its path, identity (original or relabelled) and 0-based camera index."""

    path: str
    pid: int
    camid: int


def read_image(path: str, grey: bool = False) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB (or ``(H, W)`` grey) image; an unreadable file names itself.

    TODO: use pointforge.data.image_io.read_image (being written on another branch).
    """
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    image = cv2.imread(path, flag)
    if image is None:
        raise OSError(f"cannot read image file {path!r} (missing, truncated or not an image)")
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def relabel(records: Sequence[ReIDRecord]) -> tuple[list[ReIDRecord], dict[int, int]]:
    """Training relabelling: original pids → ``0..N-1`` in increasing pid order."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [ReIDRecord(r.path, mapping[r.pid], r.camid) for r in records], mapping


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 (H, W, 3)`` → ``uint8 (3, H, W)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class ReIDImageSet(Dataset):
    """A split of a ReID dataset read from image files (see the module docstring)."""

    def __init__(
        self,
        records: Sequence[ReIDRecord],
        split: str,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        name: str = "reid",
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"ReID split must be one of {SPLITS}, got {split!r}")
        if not records:
            raise ValueError(f"{name}: the {split} split has no images")
        self.records = list(records)
        self.split = split
        self.transform = transform
        self.name = name
        self.pids = np.array([r.pid for r in self.records], dtype=np.int64)
        self.camids = np.array([r.camid for r in self.records], dtype=np.int64)

    @property
    def num_classes(self) -> int:
        """Number of training identities (contiguous labels of the train split)."""
        return int(self.pids.max()) + 1 if self.split == "train" else len(np.unique(self.pids))

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> torch.Tensor:
        """The ``uint8 (3, H, W)`` RGB image of item ``index``."""
        return image_to_tensor(read_image(self.records[index].path))

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.load(index)
        out = self.transform(image) if self.transform else image.float() / 255.0
        record = self.records[index]
        return {
            "image": out,
            "pid": torch.tensor(record.pid, dtype=torch.int64),
            "camid": torch.tensor(record.camid, dtype=torch.int64),
            "index": index,
        }


class QueryGallerySet(Dataset):
    """Queries followed by gallery images, adding ``is_query`` and a global ``index``."""

    def __init__(self, query: Dataset, gallery: Dataset) -> None:
        self.query, self.gallery = query, gallery
        self.num_query = len(query)  # type: ignore[arg-type]
        self.split = "query+gallery"

    def __len__(self) -> int:
        return self.num_query + len(self.gallery)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < self.num_query:
            item = dict(self.query[index])
        else:
            item = dict(self.gallery[index - self.num_query])
        item["index"] = index
        item["is_query"] = index < self.num_query
        return item


def check_readable(
    records: list[ReIDRecord], on_bad_image: str, name: str
) -> tuple[list[ReIDRecord], list[str]]:
    """With ``on_bad_image="skip"``, drop (log, and return the paths of) files OpenCV cannot
    decode: ``(kept records, skipped paths)``.

    Only the file signature is checked (``cv2.haveImageReader``), which is cheap; a file that
    passes it and still fails to decode raises in ``__getitem__`` naming the file.
    """
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"on_bad_image must be one of {ON_BAD_IMAGE}, got {on_bad_image!r}")
    if on_bad_image == "error":
        return records, []
    readable = [cv2.haveImageReader(r.path) for r in records]
    good = [r for r, ok in zip(records, readable) if ok]
    bad = [r.path for r, ok in zip(records, readable) if not ok]
    if bad:
        logger.warning(
            "%s: skipped %d unreadable image files (on_bad_image=skip), e.g. %s",
            name,
            len(bad),
            bad[:3],
        )
    return good, bad
