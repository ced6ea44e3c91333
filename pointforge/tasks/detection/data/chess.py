"""The real example set: chess-piece photos, kept beside the repository, not in it.

289 photos of a chess board from a fixed tripod angle with 12 piece classes (white/black
king, queen, bishop, knight, rook, pawn), from the public-domain (CC0) Roboflow export in
github.com/jsansao/ChessPiecesv23, downscaled by ``pointforge data chess``
(:mod:`pointforge.tasks.detection.data.chess_prepare`). Native COCO jsons, so this is
:class:`~pointforge.tasks.detection.data.coco.CocoDetection` with default paths; the
repository's own train/valid/test split is kept ("val" reads ``valid``).

Where the folder is: ``data.root``, by default ``../shared/data/chess``. A relative root is
read from the working directory, like every other path in a config (docs/config.md, "Paths");
from the repository root that is the shared data folder beside the clone (docs/detection.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pointforge.registry import DATASETS
from pointforge.tasks.detection.data.base import DetectionParams
from pointforge.tasks.detection.data.coco import POLICY, CocoDetection
from pointforge.tasks.detection.data.transforms import AugmentParams, build_transform

ANNOTATION_FILE = "_annotations.coco.json"
SPLIT_FOLDERS = {"train": "train", "val": "valid", "test": "test"}
DEFAULT_ROOT = "../shared/data/chess"
SOURCE_REPOSITORY = "https://github.com/jsansao/ChessPiecesv23"


@dataclass(frozen=True)
class ChessParams(DetectionParams):
    # Folder holding train/ valid/ test/ (made by `pointforge data chess`); a relative path is
    # read from the working directory (the shared data folder beside a clone's root). null
    # (what configs stored in older checkpoints hold) = the default.
    root: str | None = DEFAULT_ROOT
    # Photos are 384x257 after `pointforge data chess`; 384 keeps them at full resolution
    # (CenterNet's Pascal VOC input size too).
    image_size: tuple[int, int] = (384, 384)
    on_bad_annotation: str = field(default="error", metadata=POLICY)
    on_bad_image: str = field(default="error", metadata=POLICY)
    augment: AugmentParams = field(default_factory=AugmentParams)


def chess_root(root: str | Path | None = DEFAULT_ROOT) -> Path:
    """``root`` (None: the default) made absolute (relative: against the working directory),
    checked to exist.

    Raises FileNotFoundError naming the key, the resolved folder and how to make it, so a
    user's clone without the shared data gets one actionable line instead of a missing json.
    """
    root = DEFAULT_ROOT if root is None else root
    folder = Path(root).expanduser()
    folder = folder if folder.is_absolute() else Path.cwd() / folder
    folder = folder.resolve()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"data.root: chess folder {folder} (from {str(root)!r}) does not exist; build it "
            f"from a clone of {SOURCE_REPOSITORY} with `pointforge data chess --source CLONE "
            "--out DIR` and pass data.root=DIR (docs/detection.md)"
        )
    return folder


@DATASETS.register("chess", params=ChessParams)
def build_chess(params: ChessParams | None = None, split: str = "train") -> CocoDetection:
    """Split "train", "val" (the repository's ``valid``) or "test"; augmentation on train."""
    p = params or ChessParams()
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be one of {tuple(SPLIT_FOLDERS)}, got {split!r}")
    folder = chess_root(p.root) / SPLIT_FOLDERS[split]
    return CocoDetection(
        str(folder / ANNOTATION_FILE),
        str(folder),
        transform=build_transform(p.image_size, split == "train", p.augment),
        on_bad_annotation=p.on_bad_annotation,
        on_bad_image=p.on_bad_image,
        name=f"chess[{split}]",
    )
