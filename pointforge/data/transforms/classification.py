"""Classification pipelines built from ``torchvision.transforms.v2``.

Input: a ``uint8`` image tensor ``(C, H, W)`` with C = 1 (grey) or 3 (RGB), any size.
Output: ``float32 (in_channels, H', W')`` with ``(H', W') = data.image_size``, normalised by
``classification.mean`` / ``std``.

Order, and why: the channel policy comes first so every later step sees the channel count the
network takes; the geometric augmentation runs on ``uint8`` (cheaper, and what the v2 kernels
are tuned for); conversion to float and normalisation come last. Randomness comes from the
global torch RNG, which :class:`pointforge.data.loader.SeededSamples` seeds per sample, so a
sample's augmentation depends only on its position in the stream (exact resume).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision.transforms import v2

if TYPE_CHECKING:  # the task family's options; only read here
    from pointforge.tasks.classification.options import ClassificationConfig

# torchvision's ImageNet reference: RandomResizedCrop keeps 8-100 % of the area with aspect
# ratio 3/4-4/3 (the v2 defaults, from Szegedy et al. 2015).
CROP_SCALE = (0.08, 1.0)


class ToChannels(nn.Module):
    """Grey ↔ RGB so that the output has ``channels`` channels (1 or 3).

    Grey → RGB replicates the plane (``v2.RGB``); RGB → grey uses the ITU-R 601 luma weights
    (``v2.Grayscale``). Input/output ``(C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.channels = channels
        self.convert = v2.RGB() if channels == 3 else v2.Grayscale(num_output_channels=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected a (1|3, H, W) image tensor, got shape {tuple(image.shape)}")
        return image if image.shape[0] == self.channels else self.convert(image)


def build_classification_transform(
    cfg: ClassificationConfig, image_size: tuple[int, int], train: bool
) -> v2.Compose:
    """The train (augmented) or eval (deterministic) pipeline described in the module docstring.

    Eval resizes straight to ``image_size`` (no centre crop) so that images that were prepared
    at that size, like upsampled digits, pass through unchanged.
    """
    size = (int(image_size[0]), int(image_size[1]))
    steps: list[nn.Module] = [ToChannels(cfg.in_channels)]
    if train and cfg.augment == "crop_flip":
        steps += [
            v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    else:
        steps.append(v2.Resize(size, antialias=True))
        if train and cfg.augment == "affine":
            steps.append(
                v2.RandomAffine(
                    degrees=cfg.rotation,
                    translate=(cfg.translate, cfg.translate),
                    scale=(cfg.scale[0], cfg.scale[1]),
                    interpolation=v2.InterpolationMode.BILINEAR,
                )
            )
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
    ]
    return v2.Compose(steps)
