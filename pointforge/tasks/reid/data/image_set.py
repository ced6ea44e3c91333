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

from pointforge.data import image_io

logger = logging.getLogger(__name__)

ON_BAD_IMAGE = ("error", "skip")
SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class ReIDRecord:
    """One image: its path, identity (original or relabelled) and 0-based camera index."""

    path: str
    pid: int
    camid: int


def read_image(path: str) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB image. A missing, empty, truncated (JPEG without its end marker,
    PNG without ``IEND``) or undecodable file raises
    :class:`~pointforge.data.image_io.UnreadableImageError` naming it."""
    return cv2.cvtColor(image_io.read_image(path), cv2.COLOR_BGR2RGB)


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


def file_problem(path: str) -> str | None:
    """Why ``path`` cannot be an image (``None``: it looks fine), without decoding it: missing,
    empty or truncated JPEG/PNG (:func:`pointforge.data.image_io.check_image_file`), or a
    signature OpenCV has no decoder for (``cv2.haveImageReader``)."""
    try:
        image_io.check_image_file(path)
    except image_io.UnreadableImageError as exc:
        return exc.reason
    if not cv2.haveImageReader(path):
        return "OpenCV has no decoder for its content (not an image)"
    return None


def check_readable(
    records: list[ReIDRecord], on_bad_image: str, name: str
) -> tuple[list[ReIDRecord], list[str]]:
    """Check every file once at construction (head and tail bytes, no decoding): returns
    ``(kept records, skipped paths)``.

    ``on_bad_image="error"`` raises :class:`~pointforge.data.image_io.UnreadableImageError`
    naming the first bad file (and how many there are); ``"skip"`` drops them, logs the count
    and returns their paths (the dataset keeps them as ``.skipped``). A file that passes the
    check and still fails to decode raises in ``__getitem__``, naming the file.
    """
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"data.on_bad_image must be one of {ON_BAD_IMAGE}, got {on_bad_image!r}")
    problems = [file_problem(r.path) for r in records]
    bad = [(r.path, why) for r, why in zip(records, problems, strict=True) if why is not None]
    if not bad:
        return records, []
    if on_bad_image == "error":
        path, why = bad[0]
        raise image_io.UnreadableImageError(
            path,
            f"{why} ({name}: {len(bad)} unreadable file(s); data.on_bad_image=skip leaves "
            "them out)",
        )
    good = [r for r, why in zip(records, problems, strict=True) if why is None]
    logger.warning(
        "%s: skipped %d unreadable image files (data.on_bad_image=skip), e.g. %s",
        name,
        len(bad),
        [p for p, _ in bad[:3]],
    )
    return good, [p for p, _ in bad]
