"""Config sections of the classification family (``docs/config.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pointforge.config.schema import Config
from pointforge.config.validate import need


@dataclass(frozen=True)
class ClassificationConfig:
    """Image classification (task ``classification``): input policy, loss, augmentation, metrics."""

    # Channels fed to the network: grey images are replicated to 3, colour ones turned to luma.
    # 3 keeps torchvision's ResNet unchanged, so ImageNet-layout checkpoints load as they are.
    in_channels: int = 3
    # Per-channel normalisation of [0, 1] inputs; default: the ImageNet statistics of
    # torchvision's reference recipe (length must equal in_channels).
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    # nn.CrossEntropyLoss label smoothing; 0.1 as in Szegedy et al. 2016 (Inception-v3) and
    # torchvision's current reference recipe.
    label_smoothing: float = 0.1
    # Training augmentation. crop_flip: RandomResizedCrop (area 8-100 %) + horizontal flip, the
    # torchvision ImageNet reference; affine: a small RandomAffine and no flip, for classes a
    # mirror image would change (digits, letters); none: resize only.
    augment: str = field(default="crop_flip", metadata={"choices": ("crop_flip", "affine", "none")})
    # augment=affine ranges: max rotation in degrees, max shift as a fraction of the side, zoom
    # range. Mild on purpose (10 degrees, 10 %, x0.9-1.1) so a digit stays what it is.
    rotation: float = 10.0
    translate: float = 0.1
    scale: tuple[float, ...] = (0.9, 1.1)
    # evaluate() reports top-k accuracy (key "top{k}") for each k; k >= num_classes gives 1.0.
    topk: tuple[int, ...] = (1, 5)


@dataclass(frozen=True)
class ClassificationOptions:
    """Sections of task ``classification``."""

    classification: ClassificationConfig = field(default_factory=ClassificationConfig)


def check_classification(cfg: Config) -> None:
    """Checks of the classification keys (and the data keys it reads)."""
    c, d = cfg.classification, cfg.data
    size = getattr(d, "image_size", (1, 1))
    need(
        len(size) == 2 and all(s > 0 for s in size),
        "data.image_size",
        f"must be [height, width] with positive sides, got {list(size)}",
    )
    if hasattr(d, "val_fraction"):
        frac = d.val_fraction
        need(0.0 < frac < 1.0, "data.val_fraction", f"must be in (0, 1), got {frac}")
    root = getattr(d, "root", None)
    need(root is None or root.strip() != "", "data.root", "must be a path or null, got ''")
    need(
        c.in_channels in (1, 3),
        "classification.in_channels",
        f"must be 1 or 3, got {c.in_channels}",
    )
    for key, values in (("classification.mean", c.mean), ("classification.std", c.std)):
        need(
            len(values) == c.in_channels,
            key,
            f"needs one value per input channel ({c.in_channels}), got {list(values)}",
        )
    need(all(v > 0 for v in c.std), "classification.std", f"must be > 0, got {list(c.std)}")
    need(
        0.0 <= c.label_smoothing < 1.0,
        "classification.label_smoothing",
        f"must be in [0, 1), got {c.label_smoothing}",
    )
    need(0.0 <= c.rotation <= 180.0, "classification.rotation", "must be in [0, 180] degrees")
    need(0.0 <= c.translate < 1.0, "classification.translate", "must be in [0, 1)")
    need(
        len(c.scale) == 2 and 0 < c.scale[0] <= c.scale[1],
        "classification.scale",
        f"must be [min, max] with 0 < min <= max, got {list(c.scale)}",
    )
    need(
        len(c.topk) > 0 and all(k >= 1 for k in c.topk) and len(set(c.topk)) == len(c.topk),
        "classification.topk",
        f"must be distinct integers >= 1, got {list(c.topk)}",
    )
