"""Detection data: COCO / Pascal VOC / YOLO readers, the procedural shapes set, the bundled
chess photos, and CenterNet's box-aware augmentation. Importing this package registers the
datasets ``coco``, ``voc``, ``yolo``, ``shapes_detection`` and ``chess`` in ``DATASETS``.

The sample contract every dataset here follows is documented in :mod:`.base`.
"""

from pointforge.tasks.detection.data.base import DetectionDataset, ImageRecord
from pointforge.tasks.detection.data.chess import ChessParams, build_chess
from pointforge.tasks.detection.data.coco import (
    CocoDetection,
    CocoParams,
    SplitPaths,
    build_coco,
    register_coco,
)
from pointforge.tasks.detection.data.shapes import (
    SHAPE_CLASSES,
    ShapesDetection,
    ShapesParams,
    build_shapes,
    dump_shapes_coco,
    render_shapes,
)
from pointforge.tasks.detection.data.transforms import (
    AugmentParams,
    CenterNetTrainTransform,
    LetterboxTransform,
    build_transform,
)
from pointforge.tasks.detection.data.validation import AnnotationError
from pointforge.tasks.detection.data.voc import VocDetection, VocParams, VocSplit, build_voc
from pointforge.tasks.detection.data.yolo import YoloDetection, YoloParams, YoloSplit, build_yolo

__all__ = [
    "SHAPE_CLASSES",
    "AnnotationError",
    "AugmentParams",
    "CenterNetTrainTransform",
    "ChessParams",
    "CocoDetection",
    "CocoParams",
    "DetectionDataset",
    "ImageRecord",
    "LetterboxTransform",
    "ShapesDetection",
    "ShapesParams",
    "SplitPaths",
    "VocDetection",
    "VocParams",
    "VocSplit",
    "YoloDetection",
    "YoloParams",
    "YoloSplit",
    "build_chess",
    "build_coco",
    "build_shapes",
    "build_transform",
    "build_voc",
    "build_yolo",
    "dump_shapes_coco",
    "register_coco",
    "render_shapes",
]
