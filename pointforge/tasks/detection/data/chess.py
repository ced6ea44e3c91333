"""The bundled real example set: chess-piece photos (``data/chess`` of a source checkout).

289 photos of a chess board from a fixed tripod angle with 12 piece classes (white/black
king, queen, bishop, knight, rook, pawn), from the public-domain (CC0) Roboflow export in
github.com/jsansao/ChessPiecesv23, downscaled by ``tools/prepare_chess.py`` (see
``data/chess/README.md`` for provenance, licence and what was changed). Native COCO jsons, so
this is :class:`~pointforge.tasks.detection.data.coco.CocoDetection` with default paths; the
repository's own train/valid/test split is kept ("val" reads ``valid``).
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


def default_chess_root() -> Path:
    """``data/chess`` at the root of the checkout this package lives in."""
    return Path(__file__).resolve().parents[4] / "data" / "chess"


@dataclass(frozen=True)
class ChessParams(DetectionParams):
    root: str | None = None  # None: data/chess of this checkout
    # Photos are 384x257 after prepare_chess.py; 384 keeps them at full resolution
    # (CenterNet's Pascal VOC input size too).
    image_size: tuple[int, int] = (384, 384)
    on_bad_annotation: str = field(default="error", metadata=POLICY)
    on_bad_image: str = field(default="error", metadata=POLICY)
    augment: AugmentParams = field(default_factory=AugmentParams)


@DATASETS.register("chess", params=ChessParams)
def build_chess(params: ChessParams | None = None, split: str = "train") -> CocoDetection:
    """Split "train", "val" (the repository's ``valid``) or "test"; augmentation on train."""
    p = params or ChessParams()
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"split must be one of {tuple(SPLIT_FOLDERS)}, got {split!r}")
    folder = Path(p.root) if p.root is not None else default_chess_root()
    folder = folder / SPLIT_FOLDERS[split]
    return CocoDetection(
        str(folder / ANNOTATION_FILE),
        str(folder),
        transform=build_transform(p.image_size, split == "train", p.augment),
        on_bad_annotation=p.on_bad_annotation,
        on_bad_image=p.on_bad_image,
        name=f"chess[{split}]",
    )
