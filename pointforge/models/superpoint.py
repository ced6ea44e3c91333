"""SuperPoint / MagicPoint network (DeTone et al., 2018), MagicLeap-v1 parameter names.

Why these names: the public v1 weights (``superpoint_v1.pth``) use ``conv1a … conv4b, convPa,
convPb, convDa, convDb``; keeping them lets those weights load with ``strict=True`` and lets
our checkpoints be read by tools written for v1. The optional BatchNorm layers live under
separate ``bn*`` names so they never change the conv keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pointforge.registry import MODELS

ENCODER = ("conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a", "conv4b")
ENCODER_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 128)
# Max-pool 2×2 after these convs (every pair but the last): total stride 8.
POOL_AFTER = ("conv1b", "conv2b", "conv3b")
CELL = 8
NUM_CLASSES = CELL * CELL + 1  # 64 pixel positions + 1 "no keypoint" dustbin


class SuperPoint(nn.Module):
    """VGG-style shared encoder + detector head (+ optional descriptor head).

    Input ``(B, 1, H, W)`` grey in [0, 1] with H, W multiples of 8. Output dict:
    ``logits`` ``(B, 65, H/8, W/8)`` and, with ``descriptor=True``, ``descriptors``
    ``(B, D, H/8, W/8)`` L2-normalised over D.
    """

    def __init__(
        self, descriptor: bool = True, descriptor_dim: int = 256, batchnorm: bool = False
    ) -> None:
        super().__init__()
        self.has_descriptor = descriptor
        self.batchnorm = batchnorm
        c_in = 1
        for name, c_out in zip(ENCODER, ENCODER_CHANNELS):
            setattr(self, name, nn.Conv2d(c_in, c_out, 3, padding=1))
            if batchnorm:
                setattr(self, "bn" + name[4:], nn.BatchNorm2d(c_out))
            c_in = c_out
        self.convPa = nn.Conv2d(128, 256, 3, padding=1)
        self.convPb = nn.Conv2d(256, NUM_CLASSES, 1)
        if batchnorm:
            self.bnPa, self.bnPb = nn.BatchNorm2d(256), nn.BatchNorm2d(NUM_CLASSES)
        if descriptor:
            self.convDa = nn.Conv2d(128, 256, 3, padding=1)
            self.convDb = nn.Conv2d(256, descriptor_dim, 1)
            if batchnorm:
                self.bnDa, self.bnDb = nn.BatchNorm2d(256), nn.BatchNorm2d(descriptor_dim)

    def _conv(self, name: str, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        x = getattr(self, name)(x)
        if self.batchnorm:
            x = getattr(self, "bn" + name[4:])(x)
        return F.relu(x, inplace=True) if relu else x

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` → shared features ``(B, 128, H/8, W/8)``."""
        if image.ndim != 4 or image.shape[1] != 1:
            raise ValueError(f"SuperPoint expects (B, 1, H, W) images, got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % CELL or w % CELL:
            raise ValueError(
                f"SuperPoint needs H and W divisible by {CELL}, got image shape "
                f"{tuple(image.shape)}; pad or resize first (the predictor does this)"
            )
        x = image
        for name in ENCODER:
            x = self._conv(name, x)
            if name in POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return x

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encode(image)
        out = {"logits": self._conv("convPb", self._conv("convPa", feats), relu=False)}
        if self.has_descriptor:
            desc = self._conv("convDb", self._conv("convDa", feats), relu=False)
            out["descriptors"] = F.normalize(desc, p=2, dim=1)
        return out


@dataclass(frozen=True)
class SuperPointParams:
    """``model.*`` keys of the SuperPoint family."""

    # BatchNorm after every convolution (a variant some re-implementations train faster with);
    # MagicLeap v1 weights only fit the plain network (false, the paper's).
    batchnorm: bool = False


@MODELS.register("magicpoint", params=SuperPointParams)
def magicpoint(batchnorm: bool = False) -> SuperPoint:
    """Detector-only SuperPoint (the Synthetic Shapes stage)."""
    return SuperPoint(descriptor=False, batchnorm=batchnorm)


@MODELS.register("superpoint", params=SuperPointParams)
def superpoint(batchnorm: bool = False, descriptor_dim: int = 256) -> SuperPoint:
    """Detector + descriptor SuperPoint."""
    return SuperPoint(descriptor=True, descriptor_dim=descriptor_dim, batchnorm=batchnorm)
