"""ReID augmentation, FastReID's base recipe (BoT, Luo et al. 2019, §3 "standard baseline").

Train: resize to ``(H, W)`` → pad 10 px (zeros) → random ``(H, W)`` crop → horizontal flip
(p = 0.5) → optional colour jitter → float, ImageNet mean/std normalisation → random erasing
(Zhong et al. 2020, p = 0.5, area 2-40 %, aspect 0.3-3.3, filled with 0 after normalisation,
i.e. with the ImageNet mean colour). Eval: resize and normalise only.

Input ``uint8 (3, h, w)`` RGB tensor, any size; output ``float32 (3, H, W)``. Randomness comes
from torch's global RNG, which the engine's loader seeds per sample (exact resume).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ReIDTransformParams:
    """Augmentation parameters (BoT defaults)."""

    height: int = 256  # BoT input 256×128 (Luo et al. 2019, §3)
    width: int = 128
    padding: int = 10  # BoT: zero-pad 10 px, then random crop back to (H, W)
    flip_prob: float = 0.5  # BoT
    erasing_prob: float = 0.5  # random erasing, Zhong et al. 2020 / BoT §3.3
    erasing_scale: tuple[float, float] = (0.02, 0.4)  # Zhong et al. 2020: s_l, s_h
    erasing_ratio: tuple[float, float] = (0.3, 3.33)  # Zhong et al. 2020: r_1, 1/r_1
    # Colour jitter strength (brightness/contrast/saturation; hue = strength / 4); 0 = off
    # (FastReID's optional "CJ" augmentation, off in BoT).
    color_jitter: float = 0.0


def build_reid_transform(params: ReIDTransformParams, train: bool) -> v2.Compose:
    """The train (augmented) or eval (resize-only) pipeline of the module docstring."""
    if params.height < 1 or params.width < 1:
        raise ValueError(f"ReID input size must be positive, got {params.height}×{params.width}")
    size = (params.height, params.width)
    steps: list[torch.nn.Module] = [v2.Resize(size, antialias=True)]
    if train:
        if params.padding > 0:
            steps += [v2.Pad(params.padding, fill=0), v2.RandomCrop(size)]
        if params.flip_prob > 0:
            steps.append(v2.RandomHorizontalFlip(params.flip_prob))
        if params.color_jitter > 0:
            s = params.color_jitter
            steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=s / 4))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if train and params.erasing_prob > 0:
        steps.append(
            v2.RandomErasing(
                params.erasing_prob, scale=params.erasing_scale, ratio=params.erasing_ratio
            )
        )
    return v2.Compose(steps)
