"""HPatches sequences reader (the standard ``hpatches-sequences-release`` layout).

Each sequence folder ``i_*`` (illumination) or ``v_*`` (viewpoint) holds ``1.ppm … 6.ppm``
and ``H_1_2 … H_1_6`` (3×3 text matrices mapping image 1's pixels onto image k's). The
benchmark pairs are 1→2 … 1→6, 5 per sequence, 580 pairs over the 116 sequences. A missing
or malformed file fails at construction with an error naming the sequence and the file, not
half-way through an evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from pointforge.data.datasets.homography_pairs import HomographyPair, resize_pair
from pointforge.data.image_io import UnreadableImageError, read_image
from pointforge.registry import DATASETS

PAIR_TARGETS = (2, 3, 4, 5, 6)


def read_homography(path: Path, sequence: str) -> np.ndarray:
    """``(3, 3)`` float64 from an HPatches ``H_1_k`` file; errors name sequence and file."""
    try:
        h = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise ValueError(f"HPatches sequence {sequence}: cannot parse {path.name}: {exc}") from None
    if h.shape != (3, 3) or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
        raise ValueError(
            f"HPatches sequence {sequence}: {path.name} must hold a finite, invertible 3x3 "
            f"matrix, got shape {h.shape}"
        )
    return h


@dataclass(frozen=True)
class HPatchesParams:
    """``data.*`` keys of ``hpatches``."""

    # The hpatches-sequences-release folder (required).
    path: str | None = None
    # Images are resized to this; each image's own factors rescale H (docs/evaluation.md).
    image_size: tuple[int, ...] = (240, 320)


@DATASETS.register("hpatches", params=HPatchesParams)
class HPatches(Dataset):
    """Pairs ``1 → k`` (k = 2…6) of every sequence under ``root``, as :class:`HomographyPair`.

    ``root`` may be ``hpatches-sequences-release`` itself or a folder containing it.
    ``splits`` picks ``("i", "v")`` or one of them. ``image_size`` ``(h, w)`` resizes every
    image (the SuperPoint protocol uses 240×320) and rescales ``H`` with each image's own
    factors; ``None`` keeps the original sizes.
    """

    def __init__(
        self,
        root: str | Path,
        splits: Sequence[str] = ("i", "v"),
        image_size: Sequence[int] | None = None,
    ) -> None:
        root = Path(root)
        if (root / "hpatches-sequences-release").is_dir():
            root = root / "hpatches-sequences-release"
        if not root.is_dir():
            raise FileNotFoundError(f"HPatches folder {root} does not exist")
        bad = [s for s in splits if s not in ("i", "v")]
        if bad or not splits:
            raise ValueError(
                f"HPatches splits must be a non-empty subset of ('i', 'v'), got {splits}"
            )
        self.root = root
        self.image_size = tuple(image_size) if image_size is not None else None
        self.sequences = sorted(
            p for p in root.iterdir() if p.is_dir() and p.name[:2] in {f"{s}_" for s in splits}
        )
        if not self.sequences:
            raise ValueError(f"HPatches folder {root} has no i_*/v_* sequence folders")
        for seq in self.sequences:
            for name in ["1.ppm", *(f"{k}.ppm" for k in PAIR_TARGETS)]:
                if not (seq / name).is_file():
                    raise FileNotFoundError(f"HPatches sequence {seq.name}: missing file {name}")
            for k in PAIR_TARGETS:
                if not (seq / f"H_1_{k}").is_file():
                    raise FileNotFoundError(f"HPatches sequence {seq.name}: missing file H_1_{k}")
                read_homography(seq / f"H_1_{k}", seq.name)

    def __len__(self) -> int:
        return len(self.sequences) * len(PAIR_TARGETS)

    def _image(self, seq: Path, name: str) -> np.ndarray:
        try:
            return read_image(seq / name, grey=True)
        except UnreadableImageError as exc:
            raise UnreadableImageError(
                exc.path, f"{exc.reason} (HPatches sequence {seq.name})"
            ) from None

    def __getitem__(self, index: int) -> HomographyPair:
        if not 0 <= index < len(self):
            raise IndexError(f"pair index {index} out of range [0, {len(self)})")
        seq = self.sequences[index // len(PAIR_TARGETS)]
        k = PAIR_TARGETS[index % len(PAIR_TARGETS)]
        pair = HomographyPair(
            name=f"{seq.name}/1-{k}",
            split=seq.name[0],
            image1=self._image(seq, "1.ppm"),
            image2=self._image(seq, f"{k}.ppm"),
            H=read_homography(seq / f"H_1_{k}", seq.name),
        )
        return resize_pair(pair, self.image_size)
