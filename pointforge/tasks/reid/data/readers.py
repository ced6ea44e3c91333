"""Readers for Market-1501, DukeMTMC-reID and a generic folder layout.

- **Market-1501** (Zheng et al. 2015): ``bounding_box_train/``, ``query/``,
  ``bounding_box_test/`` (the gallery), files ``0002_c1s1_000451_03.jpg`` = identity 0002,
  camera 1, sequence 1, frame 000451, detection box 03. Identity ``-1`` marks junk boxes
  (kept in the gallery, where the metric ignores them, dropped elsewhere with a log line) and
  ``0000`` distractors (kept in the gallery as negatives).
- **DukeMTMC-reID** (Zheng et al. 2017): same folders, ``0005_c2_f0046985.jpg`` = identity,
  camera, frame.
- **generic**: ``<root>/<split>/<identity>/<camera>_<anything>.<jpg|jpeg|png>`` with splits
  ``train``, ``query``, ``gallery``, for users' own data. Identity folder names are any text;
  ``-1`` means junk. Query and gallery identities are numbered by their position in the
  sorted list of identity names of query ∪ gallery (so the two agree); camera names (the text
  before the first ``_``) are numbered by their position in the sorted list over all splits.

Every file with an image extension must parse: a name that does not is an error naming the
file. Other files (``Thumbs.db`` ships inside Market-1501's folders) are ignored.
Cameras become 0-based ``camid``; training identities are relabelled ``0..N-1``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pointforge.tasks.reid.data.image_set import (
    ON_BAD_IMAGE,
    SPLITS,
    ReIDImageSet,
    ReIDRecord,
    check_readable,
    relabel,
)

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
MARKET_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.jpg$")
_DUKE_NAME = re.compile(r"^(\d+)_c(\d+)_f(\d+)\.jpg$")
JUNK = -1
Transform = Callable[[torch.Tensor], torch.Tensor]


class ReIDFormatError(ValueError):
    """A file or folder of a ReID dataset does not follow the dataset's naming."""


@dataclass(frozen=True)
class ReIDFolderParams:
    """Keys under ``data.`` for the three file-based readers."""

    # Dataset folder (containing the split folders); required, there is no download.
    root: str | None = None
    # A missing, empty, truncated (JPEG/PNG end marker absent) or undecodable file, found at
    # construction: "error" stops naming it, "skip" drops it (logged and counted).
    on_bad_image: str = field(default="error", metadata={"choices": ON_BAD_IMAGE})
    # The network input [H, W] every crop is resized to (read by the task's transform, not by
    # the reader); null = BoT's 256×128 (pointforge/tasks/reid/options.py).
    image_size: tuple[int, int] | None = None


# The Market and Duke readers take the same parameters; separate names keep configs explicit.
Market1501Params = ReIDFolderParams
DukeMTMCParams = ReIDFolderParams
GenericReIDParams = ReIDFolderParams


def _require_root(params: ReIDFolderParams, dataset: str) -> str:
    if params.root is None:
        raise ValueError(f"data.root must be set to the {dataset} folder (nothing is downloaded)")
    if not os.path.isdir(params.root):
        raise FileNotFoundError(f"data.root={params.root!r} ({dataset}) is not a folder")
    return params.root


def _image_files(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"ReID split folder {folder!r} does not exist")
    names = sorted(os.listdir(folder))
    return [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]


def _parse(folder: str, pattern: re.Pattern[str], example: str) -> list[ReIDRecord]:
    records = []
    for name in _image_files(folder):
        match = pattern.match(name)
        if match is None:
            raise ReIDFormatError(
                f"cannot parse ReID file name {os.path.join(folder, name)!r}: expected names "
                f"like {example!r}"
            )
        pid, cam = int(match.group(1)), int(match.group(2))
        if cam < 1:
            raise ReIDFormatError(
                f"camera 0 in {os.path.join(folder, name)!r}: cameras are numbered from 1"
            )
        records.append(ReIDRecord(os.path.join(folder, name), pid, cam - 1))
    return records


def _finish(
    records: list[ReIDRecord], split: str, params: ReIDFolderParams, name: str,
    transform: Transform | None,
) -> ReIDImageSet:  # fmt: skip
    """Junk policy, readability check, relabelling; returns the dataset."""
    junk = 0
    if split != "gallery":
        junk = sum(r.pid == JUNK for r in records)
        if junk:
            logger.info("%s %s: left out %d junk images (identity -1)", name, split, junk)
            records = [r for r in records if r.pid != JUNK]
    records, skipped = check_readable(records, params.on_bad_image, f"{name} {split}")
    mapping: dict[int, int] = {}
    if split == "train":
        records, mapping = relabel(records)
    dataset = ReIDImageSet(records, split, transform, name)
    dataset.skipped = skipped  # type: ignore[attr-defined]
    dataset.num_junk_dropped = junk  # type: ignore[attr-defined]
    dataset.pid_mapping = mapping  # type: ignore[attr-defined]
    return dataset


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"ReID split must be one of {SPLITS}, got {split!r}")


def market1501(
    split: str, params: ReIDFolderParams, transform: Transform | None = None
) -> ReIDImageSet:
    """One split of Market-1501 (see the module docstring)."""
    _check_split(split)
    root = _require_root(params, "Market-1501")
    folder = os.path.join(root, MARKET_FOLDERS[split])
    records = _parse(folder, _MARKET_NAME, "0002_c1s1_000451_03.jpg")
    return _finish(records, split, params, "Market-1501", transform)


def dukemtmc(
    split: str, params: ReIDFolderParams, transform: Transform | None = None
) -> ReIDImageSet:
    """One split of DukeMTMC-reID (see the module docstring)."""
    _check_split(split)
    root = _require_root(params, "DukeMTMC-reID")
    folder = os.path.join(root, MARKET_FOLDERS[split])
    records = _parse(folder, _DUKE_NAME, "0005_c2_f0046985.jpg")
    return _finish(records, split, params, "DukeMTMC-reID", transform)


def _generic_entries(root: str, split: str) -> list[tuple[str, str, str]]:
    """``(path, identity name, camera name)`` of ``<root>/<split>/<identity>/<cam>_*.ext``."""
    base = os.path.join(root, split)
    if not os.path.isdir(base):
        raise FileNotFoundError(
            f"ReID folder layout: {base!r} does not exist (expected <root>/<split>/<identity>/"
            "<camera>_<anything>.jpg with splits train, query, gallery)"
        )
    entries = []
    for identity in sorted(os.listdir(base)):
        folder = os.path.join(base, identity)
        if not os.path.isdir(folder):
            continue
        for name in _image_files(folder):
            camera, sep, rest = name.partition("_")
            if not sep or not camera or not os.path.splitext(rest)[0]:
                raise ReIDFormatError(
                    f"cannot parse ReID file name {os.path.join(folder, name)!r}: expected "
                    "<camera>_<anything>.jpg, e.g. 'cam1_0001.jpg'"
                )
            entries.append((os.path.join(folder, name), identity, camera))
    return entries


def generic_reid(
    split: str, params: ReIDFolderParams, transform: Transform | None = None
) -> ReIDImageSet:
    """One split of a ``<root>/<split>/<identity>/<camera>_<anything>.jpg`` folder."""
    _check_split(split)
    root = _require_root(params, "ReID image folder")
    present = [s for s in SPLITS if os.path.isdir(os.path.join(root, s))]
    cameras = sorted({cam for s in present for _, _, cam in _generic_entries(root, s)})
    cam_index = {c: i for i, c in enumerate(cameras)}
    entries = _generic_entries(root, split)
    if split == "train":
        names = sorted({ident for _, ident, _ in entries if ident != str(JUNK)})
    else:
        names = sorted(
            {ident for s in ("query", "gallery") if s in present
             for _, ident, _ in _generic_entries(root, s) if ident != str(JUNK)}
        )  # fmt: skip
    pid_of = {n: i for i, n in enumerate(names)}
    records = [
        ReIDRecord(path, JUNK if ident == str(JUNK) else pid_of[ident], cam_index[cam])
        for path, ident, cam in entries
    ]
    dataset = _finish(records, split, params, "ReID image folder", transform)
    dataset.identity_names = names  # type: ignore[attr-defined]
    return dataset
