"""torchvision ResNets for the classification task, registered as ``resnet18/34/50``.

We build torchvision's own ``ResNet`` (``weights=None``: nothing is downloaded) instead of
re-implementing it, and only adapt its input end:

- ``in_channels``: the first convolution takes 1 (grey) or 3 (RGB) channels. 3 keeps the
  architecture identical to torchvision's, so ImageNet checkpoints load unchanged.
- ``small_input``: the ImageNet stem (7×7 stride-2 conv, then 3×3 stride-2 max-pool) divides
  the resolution by 4 before the first residual block. On 16–32 px images (CIFAR, upsampled
  8×8 digits) that leaves a 1×1 map for ``layer4`` and throws away most spatial detail in
  the first two layers. The CIFAR variant of the ResNet paper (He et al. 2016, §4.2) keeps the
  full resolution in the first stage instead, so ``small_input`` swaps the stem for a 3×3
  stride-1 conv and drops the max-pool: a 16×16 input then reaches ``layer4`` at 2×2.

Input ``(B, in_channels, H, W)`` float, output logits ``(B, num_classes)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torchvision.models import ResNet, resnet18, resnet34, resnet50

from pointforge.registry import MODELS

STEM_CHANNELS = 64  # width of torchvision's ResNet stem (all depths)


def adapt_stem(model: ResNet, in_channels: int, small_input: bool) -> ResNet:
    """Replace ``model.conv1`` (and the max-pool) to fit ``in_channels`` / small inputs.

    The replaced conv gets torchvision's own initialisation (Kaiming normal, fan-out, ReLU),
    so a modified stem trains like the original one.
    """
    if in_channels not in (1, 3):
        raise ValueError(f"ResNet in_channels must be 1 or 3, got {in_channels}")
    if small_input:
        model.conv1 = nn.Conv2d(in_channels, STEM_CHANNELS, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, STEM_CHANNELS, 7, stride=2, padding=3, bias=False)
    else:
        return model
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def _factory(builder: Callable[..., ResNet]) -> Callable[..., ResNet]:
    def build(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False) -> ResNet:
        if num_classes < 1:
            raise ValueError(f"ResNet num_classes must be >= 1, got {num_classes}")
        model = builder(weights=None, num_classes=num_classes)
        return adapt_stem(model, in_channels, small_input)

    build.__name__ = build.__qualname__ = builder.__name__
    build.__doc__ = (
        f"torchvision ``{builder.__name__}`` (random init) with ``num_classes`` outputs; see "
        "the module docstring for ``in_channels`` and ``small_input``."
    )
    return build


@dataclass(frozen=True)
class ResNetParams:
    """``model.*`` keys of the classification ResNets."""

    # ResNet stem for small images (16-32 px): 3x3 stride-1 conv, no max-pool, instead of the
    # ImageNet 7x7 stride-2 conv + max-pool (the CIFAR ResNets of He et al. 2016, section 4.2).
    small_input: bool = False


for _builder in (resnet18, resnet34, resnet50):
    MODELS.register(_builder.__name__, params=ResNetParams)(_factory(_builder))
