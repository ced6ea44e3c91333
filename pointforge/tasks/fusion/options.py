"""Config section ``centerfusion:`` of task ``centerfusion`` (``docs/config.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.tasks.detection.targets import TargetParams
from pointforge.tasks.fusion.losses import FusionLossParams


@dataclass(frozen=True)
class CenterFusionConfig:
    """Targets, loss weights, decoding and drawings of radar-camera 3D detection."""

    loss: FusionLossParams = field(default_factory=FusionLossParams)
    # 2D heatmap targets (CenterNet's, pointforge/tasks/detection/targets.py).
    targets: TargetParams = field(default_factory=TargetParams)
    # Peaks kept per image at evaluation: CenterFusion's K = 100 (nuScenes allows 500).
    topk: int = 100
    # Minimum score of an evaluated detection; 0 keeps all top-K (the AP integrates over the
    # scores, so a threshold only removes low-recall points).
    score_threshold: float = 0.0
    # Validation samples drawn at evaluation (eval/bev_<i>.png, eval/image3d_<i>.png), and the
    # score above which a prediction is drawn (CenterFusion --vis_thresh 0.3).
    draw_samples: int = 1
    draw_threshold: float = 0.3


@dataclass(frozen=True)
class CenterFusionOptions:
    """Sections of task ``centerfusion``."""

    centerfusion: CenterFusionConfig = field(default_factory=CenterFusionConfig)


def check_centerfusion(cfg: Config) -> None:
    """Value checks of the section and of the data keys it relies on."""
    c = cfg.centerfusion
    size = getattr(cfg.data, "image_size", None)
    need(
        size is not None and len(size) == 2 and all(s > 0 and s % 32 == 0 for s in size),
        "data.image_size",
        f"must be [height, width], both multiples of 32 (the backbone stride), got {size}",
    )
    need(c.topk >= 1, "centerfusion.topk", f"must be >= 1, got {c.topk}")
    need(
        0.0 <= c.score_threshold < 1.0,
        "centerfusion.score_threshold",
        f"must be in [0, 1), got {c.score_threshold}",
    )
    need(c.draw_samples >= 0, "centerfusion.draw_samples", "must be >= 0")
    need(
        c.targets.stride == 4,
        "centerfusion.targets.stride",
        "must be 4 (the CenterNet output stride)",
    )
