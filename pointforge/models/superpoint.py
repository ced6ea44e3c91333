"""SuperPoint / MagicPoint network (DeTone et al., 2018), MagicLeap-v1 parameter names.

Why these names: the public v1 weights (``superpoint_v1.pth``) use ``conv1a … conv4b, convPa,
convPb, convDa, convDb``; keeping them lets those weights load with ``strict=True`` and lets
our checkpoints be read by tools written for v1. The optional BatchNorm layers live under
separate ``bn*`` names so they never change the conv keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pointforge.registry import MODELS

ENCODER = ("conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a", "conv4b")
ENCODER_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 128)
HEAD_CHANNELS = 256
CELL = 8
NUM_CLASSES = CELL * CELL + 1  # 64 pixel positions + 1 "no keypoint" dustbin
# The CPU-fast variant (docs/keypoints.md, "SuperPoint-Lite"): three stages instead of four,
# the first convolution at stride 2, half the channels up to H/4 and 128-wide heads: about
# 1/6 of the multiply-adds per pixel (~14k vs ~85k), the same outputs and cell size.
LITE_CHANNELS = (32, 32, 64, 64, 128, 128)
LITE_HEAD_CHANNELS = 128


def encoder_names(num_convs: int) -> tuple[str, ...]:
    """``conv1a, conv1b, conv2a, ...`` for ``num_convs`` encoder convolutions (two per stage)."""
    return tuple(f"conv{i // 2 + 1}{'ab'[i % 2]}" for i in range(num_convs))


def stem_stride(num_stages: int) -> int:
    """Stride of the first convolution so that the encoder's total stride is the 8-px cell:
    a 2×2 max-pool follows every stage but the last, so 4 stages (the paper's) need stride 1
    and 3 stages stride 2."""
    if num_stages not in (2, 3, 4):
        raise ValueError(f"SuperPoint encoders have 2 to 4 stages of two convs, got {num_stages}")
    return CELL // 2 ** (num_stages - 1)


class SuperPoint(nn.Module):
    """VGG-style shared encoder + detector head (+ optional descriptor head).

    Input ``(B, 1, H, W)`` grey in [0, 1] with H, W multiples of 8. Output dict:
    ``logits`` ``(B, 65, H/8, W/8)`` and, with ``descriptor=True``, ``descriptors``
    ``(B, D, H/8, W/8)`` L2-normalised over D.

    ``channels`` (two per stage) and ``head_channels`` size the network; the defaults are the
    paper's. Fewer stages start with a strided convolution (:func:`stem_stride`), so every
    variant keeps the 8-px cell and the parameter names, and the architecture can be read back
    from a state dict (:func:`architecture_of`).
    """

    def __init__(
        self,
        descriptor: bool = True,
        descriptor_dim: int = 256,
        batchnorm: bool = False,
        channels: tuple[int, ...] = ENCODER_CHANNELS,
        head_channels: int = HEAD_CHANNELS,
        output_batchnorm: bool = True,
    ) -> None:
        super().__init__()
        if len(channels) % 2:
            raise ValueError(f"SuperPoint channels come in pairs (two convs per stage): {channels}")
        self.has_descriptor = descriptor
        self.batchnorm = batchnorm
        # BatchNorm also on the two output convs (convPb, convDb): the published BN variant's
        # layout. Off, the logits keep a free offset, which a student trained from scratch
        # needs to match a teacher's ~90 % "no keypoint" cells (docs/keypoints.md).
        self.output_batchnorm = batchnorm and output_batchnorm
        self.encoder = encoder_names(len(channels))
        self.stride = stem_stride(len(channels) // 2)
        # Max-pool 2×2 after the second conv of every stage but the last.
        self.pool_after = self.encoder[1:-2:2]
        c_in = 1
        for i, (name, c_out) in enumerate(zip(self.encoder, channels)):
            stride = self.stride if i == 0 else 1
            setattr(self, name, nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1))
            if batchnorm:
                setattr(self, "bn" + name[4:], nn.BatchNorm2d(c_out))
            c_in = c_out
        h = head_channels
        self.convPa = nn.Conv2d(c_in, h, 3, padding=1)
        self.convPb = nn.Conv2d(h, NUM_CLASSES, 1)
        if batchnorm:
            self.bnPa = nn.BatchNorm2d(h)
        if self.output_batchnorm:
            self.bnPb = nn.BatchNorm2d(NUM_CLASSES)
        if descriptor:
            self.convDa = nn.Conv2d(c_in, h, 3, padding=1)
            self.convDb = nn.Conv2d(h, descriptor_dim, 1)
            if batchnorm:
                self.bnDa = nn.BatchNorm2d(h)
            if self.output_batchnorm:
                self.bnDb = nn.BatchNorm2d(descriptor_dim)

    def _conv(self, name: str, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        x = getattr(self, name)(x)
        bn = getattr(self, "bn" + name[4:], None)
        if bn is not None:
            x = bn(x)
        return F.relu(x, inplace=True) if relu else x

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` → shared features ``(B, C, H/8, W/8)`` (C = 128 for both variants)."""
        if image.ndim != 4 or image.shape[1] != 1:
            raise ValueError(f"SuperPoint expects (B, 1, H, W) images, got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % CELL or w % CELL:
            raise ValueError(
                f"SuperPoint needs H and W divisible by {CELL}, got image shape "
                f"{tuple(image.shape)}; pad or resize first (the predictor does this)"
            )
        x = image
        for name in self.encoder:
            x = self._conv(name, x)
            if name in self.pool_after:
                x = F.max_pool2d(x, 2)
        return x

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encode(image)
        out = {"logits": self._conv("convPb", self._conv("convPa", feats), relu=False)}
        if self.has_descriptor:
            desc = self._conv("convDb", self._conv("convDa", feats), relu=False)
            out["descriptors"] = F.normalize(desc, p=2, dim=1)
        return out


def architecture_of(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """:class:`SuperPoint` keyword arguments that fit ``state``: descriptor head and its size,
    BatchNorm, encoder channels and head width, all read from the weight shapes (the stem
    stride follows from the number of stages), so any variant's checkpoint rebuilds itself."""
    convs = [n for n in encoder_names(8) if f"{n}.weight" in state]
    return {
        "descriptor": "convDa.weight" in state,
        "descriptor_dim": state["convDb.weight"].shape[0] if "convDb.weight" in state else 256,
        "batchnorm": any(k.startswith("bn") for k in state),
        "output_batchnorm": "bnPb.weight" in state,
        "channels": tuple(int(state[f"{n}.weight"].shape[0]) for n in convs),
        "head_channels": int(state["convPa.weight"].shape[0])
        if "convPa.weight" in state
        else HEAD_CHANNELS,
    }


def model_overrides_for(state: dict[str, torch.Tensor]) -> str | None:
    """The ``model.*`` overrides that build a network fitting ``state`` (e.g.
    ``"model.name=superpoint_lite model.batchnorm=true"``), or ``None`` when it is no registered
    SuperPoint shape.

    Why: a checkpoint evaluated with the wrong ``model.name`` fails on 50 key names; naming the
    right overrides in that error is what the user needs."""
    if "conv1a.weight" not in state or "convPa.weight" not in state:
        return None
    arch = architecture_of(state)
    shape = (arch["channels"], arch["head_channels"])
    if shape == (LITE_CHANNELS, LITE_HEAD_CHANNELS) and arch["descriptor"]:
        name = "superpoint_lite"
    elif shape == (ENCODER_CHANNELS, HEAD_CHANNELS):
        name = "superpoint" if arch["descriptor"] else "magicpoint"
    else:
        return None
    return f"model.name={name} model.batchnorm={str(arch['batchnorm']).lower()}"


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


@dataclass(frozen=True)
class SuperPointLiteParams:
    """``model.*`` keys of SuperPoint-Lite."""

    # BatchNorm after every conv but the 1x1 output convs: on by default because the slim
    # network barely trains without it (docs/keypoints.md, "SuperPoint-Lite"), and the shipped
    # superpoint_lite.pth has it.
    batchnorm: bool = True


@MODELS.register("superpoint_lite", params=SuperPointLiteParams)
def superpoint_lite(batchnorm: bool = True, descriptor_dim: int = 256) -> SuperPoint:
    """The CPU-fast SuperPoint (:data:`LITE_CHANNELS`), trained by distillation from the full
    network (task ``superpoint_distill``)."""
    return SuperPoint(
        descriptor=True,
        descriptor_dim=descriptor_dim,
        batchnorm=batchnorm,
        channels=LITE_CHANNELS,
        head_channels=LITE_HEAD_CHANNELS,
        output_batchnorm=False,
    )
