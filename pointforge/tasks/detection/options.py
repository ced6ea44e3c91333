"""Config section ``centernet:`` of task ``centernet`` (``docs/config.md``).

Why one flat section: the target, loss, decoding and prediction settings of CenterNet are few
and each is a number from the paper; flat keys (``centernet.wh_weight=0.2``) are what a user
overrides on the command line. :func:`target_params`, :func:`loss_params` and
:func:`predictor_params` turn it into the building blocks' own dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.tasks.detection.decode import DEFAULT_TOPK
from pointforge.tasks.detection.losses import CenterNetLossParams
from pointforge.tasks.detection.model import BACKBONE_STRIDE, OUTPUT_STRIDE
from pointforge.tasks.detection.predictor import PredictorParams
from pointforge.tasks.detection.targets import RADIUS_MODES, TargetParams


@dataclass(frozen=True)
class CenterNetConfig:
    """Targets, loss, decoding and prediction of CenterNet ("Objects as Points", 2019)."""

    # -- targets (pointforge/tasks/detection/targets.py) --
    # Padded objects per image; 128 is the paper code's max_objs for COCO (no COCO image has
    # more than 93 annotations). An image with more is an error, never silently cut.
    max_objects: int = 128
    # IoU that a box with corners displaced by the Gaussian radius must keep (CornerNet §3.2,
    # reused by CenterNet §3).
    min_overlap: float = 0.7
    # released: the radius formula of the released CenterNet code, with which the paper's
    # figures were trained; exact: the geometric solution (about 3x narrower Gaussians).
    radius_mode: str = field(default="released", metadata={"choices": RADIUS_MODES})
    # -- loss (pointforge/tasks/detection/losses.py), paper §3 --
    focal_alpha: float = 2.0  # α of the penalty-reduced focal loss
    focal_beta: float = 4.0  # β of the (1 - Y)^β penalty reduction near a peak
    heatmap_weight: float = 1.0  # weight of L_k (Eq. 4)
    wh_weight: float = 0.1  # λ_size ("We set λ_size = 0.1")
    offset_weight: float = 1.0  # λ_off ("λ_off = 1")
    # -- decoding, evaluation and prediction --
    # Peaks kept per image: "we use the top 100 peaks" (paper §4), COCO's maxDets.
    topk: int = DEFAULT_TOPK
    # Average with the mirrored image (paper §5.1 "flip augmentation"); off by default: it
    # doubles inference time, and the paper's headline speed figures are without it.
    flip_test: bool = False
    # Side of the square letterbox of load_predictor; null: the longer side of data.image_size
    # (what the model was trained at). Must be a multiple of 32.
    input_size: int | None = None
    # Score below which load_predictor drops a detection; 0.3 is the released code's
    # visualisation threshold (opts.py --vis_thresh). Evaluation ignores it (COCO AP is
    # computed over all top-K detections).
    score_threshold: float = 0.3


@dataclass(frozen=True)
class CenterNetOptions:
    """Sections of task ``centernet``."""

    centernet: CenterNetConfig = field(default_factory=CenterNetConfig)


def check_centernet(cfg: Config) -> None:
    """Value checks of ``centernet.*`` and of the data keys the task relies on."""
    c, d = cfg.centernet, cfg.data
    size = tuple(getattr(d, "image_size", ()))
    need(
        len(size) == 2 and all(s > 0 and s % BACKBONE_STRIDE == 0 for s in size),
        "data.image_size",
        f"must be [height, width], each a positive multiple of {BACKBONE_STRIDE} "
        f"(the ResNet stride), got {list(size)}",
    )
    need(c.max_objects >= 1, "centernet.max_objects", f"must be >= 1, got {c.max_objects}")
    need(
        0.0 < c.min_overlap < 1.0,
        "centernet.min_overlap",
        f"must be in (0, 1), got {c.min_overlap}",
    )
    for key in ("focal_alpha", "focal_beta"):
        value = getattr(c, key)
        need(value >= 0, f"centernet.{key}", f"must be >= 0, got {value}")
    for key in ("heatmap_weight", "wh_weight", "offset_weight"):
        value = getattr(c, key)
        need(value >= 0, f"centernet.{key}", f"must be >= 0, got {value}")
    need(c.topk >= 1, "centernet.topk", f"must be >= 1, got {c.topk}")
    need(
        c.input_size is None or (c.input_size > 0 and c.input_size % BACKBONE_STRIDE == 0),
        "centernet.input_size",
        f"must be null or a positive multiple of {BACKBONE_STRIDE}, got {c.input_size}",
    )
    need(
        0.0 <= c.score_threshold < 1.0,
        "centernet.score_threshold",
        f"must be in [0, 1), got {c.score_threshold}",
    )


def target_params(cfg: Config) -> TargetParams:
    c = cfg.centernet
    return TargetParams(OUTPUT_STRIDE, c.max_objects, c.min_overlap, c.radius_mode)


def loss_params(cfg: Config) -> CenterNetLossParams:
    c = cfg.centernet
    return CenterNetLossParams(
        c.focal_alpha, c.focal_beta, c.heatmap_weight, c.wh_weight, c.offset_weight
    )


def predictor_params(cfg: Config, **overrides: object) -> PredictorParams:
    """The predictor's options: ``centernet.*`` of the stored config, then ``overrides``
    (``load_predictor(path, score_threshold=0.5)``)."""
    c = cfg.centernet
    size = c.input_size if c.input_size is not None else max(cfg.data.image_size)
    values: dict[str, object] = {
        "input_size": int(size),
        "topk": c.topk,
        "score_threshold": c.score_threshold,
        "flip_test": c.flip_test,
    }
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise TypeError(f"unknown CenterNet predictor options {unknown}; valid: {sorted(values)}")
    values.update(overrides)
    return PredictorParams(**values)  # type: ignore[arg-type]
