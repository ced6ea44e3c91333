"""CenterNet ("Objects as Points", Zhou et al. 2019) with its ResNet + up-convolution neck.

Why this shape: CenterNet predicts every object as the peak of a per-class heatmap at output
stride 4, plus the box size and the sub-cell offset of the centre at that peak. The paper's
ResNet variant (§5, "Implementation details") takes a plain ResNet (stride 32) and adds three
up-convolution stages that bring it back to stride 4; each stage is a 3×3 (deformable) conv,
then a 4×4 transposed conv with stride 2, with 256, 128, 64 channels. Three heads — heatmap,
size, offset — each a 3×3 conv with ``head_conv`` channels, ReLU and a 1×1 conv, read the
stride-4 features.

Input: ``(B, 3, H, W)`` float RGB in [0, 1]; the model normalises it with the ImageNet
mean/std itself (so predictors, exports and the training loop all feed the same [0, 1] image).
H and W must be multiples of 32 (the backbone's stride). Output: a dict of
``heatmap`` ``(B, C, H/4, W/4)`` logits, ``wh`` ``(B, 2, H/4, W/4)`` box width/height in
output cells, ``offset`` ``(B, 2, H/4, W/4)`` centre offset in output cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet, resnet18, resnet34, resnet50
from torchvision.ops import DeformConv2d

from pointforge.models.backbone_weights import load_backbone_weights
from pointforge.registry import MODELS

OUTPUT_STRIDE = 4  # ResNet stride 32, halved three times by the neck
# Bytes per class name in the ``class_name_bytes`` buffer (UTF-8, zero-padded); COCO's
# longest name has 14, so 64 leaves room for user datasets.
MAX_NAME_BYTES = 64
BACKBONE_STRIDE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics (RGB)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BACKBONES: dict[int, Callable[..., ResNet]] = {18: resnet18, 34: resnet34, 50: resnet50}


@dataclass(frozen=True)
class CenterNetArchParams:
    """Architecture keys under ``model.`` of the ``centernet_resnet*`` factories (the depth is
    fixed by the factory's name; :class:`CenterNetParams` adds it)."""

    # Modulated deformable 3×3 conv (DCNv2) before each up-convolution, as in the paper's
    # ResNet variant ("ResNet-DCN"); False uses a plain 3×3 conv (exports to ONNX, see
    # pointforge/tasks/detection/onnx_export.py).
    deform: bool = False
    # Output channels of the three up-convolution stages: the paper's ResNet variant
    # "change[s] the channels of the three upsampling layers to 256, 128, 64".
    neck_channels: tuple[int, int, int] = (256, 128, 64)
    # Hidden width of each head's 3×3 conv; 64 for the ResNet backbones in the paper's code.
    head_conv: int = 64
    # Initial foreground probability of the heatmap: bias = -log((1 - p) / p) = -2.19 for
    # p = 0.1, the paper's value (the focal-loss prior of Lin et al. 2017, §4.1).
    prior_prob: float = 0.1
    # Initialise the transposed convs as bilinear upsampling ("The up-convolutional kernels
    # are initialized as bilinear interpolation", paper §5).
    bilinear_upsample_init: bool = True
    # Add the backbone's stride-16/8/4 features (layer3/2/1, each through a 3×3 conv-BN-ReLU)
    # to the outputs of the three up-convolution stages. The paper's ResNet variant has no
    # such shortcuts; TTFNet (Liu et al. 2020, "Training-Time-Friendly Network", §3) adds
    # them to the same ResNet + up-convolution design to shorten training. Trained from
    # scratch on CPU budgets they are what lets CenterNet-R18 learn in a few hundred steps
    # (docs/detection.md has the measurement). False is the paper's architecture.
    skip_connections: bool = False
    # A torchvision ResNet state dict of the model's depth (e.g. ImageNet's resnet18-f37072fd.pth,
    # fc.* ignored), fitted into the backbone at construction, before model.weights (which
    # overwrites it); null = from scratch. Nothing is downloaded (docs/detection.md).
    backbone_weights: str | None = None

    def __post_init__(self) -> None:
        if len(self.neck_channels) != 3 or min(self.neck_channels) < 1:
            raise ValueError(
                f"model.neck_channels must be three positive ints, got {self.neck_channels}"
            )
        if self.head_conv < 1:
            raise ValueError(f"model.head_conv must be >= 1, got {self.head_conv}")
        if not 0.0 < self.prior_prob < 1.0:
            raise ValueError(f"model.prior_prob must be in (0, 1), got {self.prior_prob}")


@dataclass(frozen=True)
class CenterNetParams(CenterNetArchParams):
    """All architecture parameters of :class:`CenterNet`."""

    # ResNet depth of the torchvision backbone; the paper reports ResNet-18 and ResNet-101,
    # we offer the three depths torchvision builds cheaply.
    depth: int = field(default=18, metadata={"choices": (18, 34, 50)})

    def __post_init__(self) -> None:
        if self.depth not in _BACKBONES:
            raise ValueError(f"model.depth must be one of {sorted(_BACKBONES)}, got {self.depth}")
        super().__post_init__()


class ModulatedDeformConv3x3(nn.Module):
    """DCNv2 3×3 conv: ``torchvision.ops.DeformConv2d`` with predicted offsets and mask.

    A plain 3×3 conv predicts 27 channels per position: 18 offsets (dy, dx for each of the 9
    taps, torchvision's layout) and 9 mask logits. It starts at zero, so the layer starts as an
    ordinary 3×3 conv whose taps are weighted by sigmoid(0) = 0.5 (Zhu et al. 2019, DCNv2 §3:
    offsets and modulation "initialized to 0 and 0.5").
    ``(B, C_in, H, W) → (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.offset_mask = nn.Conv2d(in_channels, 3 * 9, 3, padding=1)
        nn.init.zeros_(self.offset_mask.weight)
        assert self.offset_mask.bias is not None  # nn.Conv2d's default bias=True
        nn.init.zeros_(self.offset_mask.bias)
        self.conv = DeformConv2d(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        om = self.offset_mask(x)
        offset, mask = om[:, :18], om[:, 18:].sigmoid()
        return self.conv(x, offset, mask)


def _bilinear_(weight: torch.Tensor) -> None:
    """Fill a ``(C_in, C_out, k, k)`` transposed-conv weight with a bilinear kernel.

    Every output channel gets the same separable triangle filter on every input channel
    that shares its index; the other input channels get zero, so each channel is upsampled on
    its own (the weight is square in channels here, C_in == C_out).
    """
    k = weight.shape[-1]
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    og = torch.arange(k, dtype=torch.float64)
    tri = 1 - (og - centre).abs() / factor
    kernel = (tri[:, None] * tri[None, :]).to(weight.dtype)
    with torch.no_grad():
        weight.zero_()
        for c in range(min(weight.shape[0], weight.shape[1])):
            weight[c, c] = kernel


class UpStage(nn.Sequential):
    """One neck stage: 3×3 (deformable) conv-BN-ReLU, 4×4 stride-2 up-conv-BN-ReLU.

    ``(B, C_in, H, W) → (B, C_out, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, deform: bool, bilinear: bool) -> None:
        conv: nn.Module = (
            ModulatedDeformConv3x3(in_channels, out_channels)
            if deform
            else nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        )
        # kernel 4, stride 2, padding 1 doubles the size exactly: (H - 1)·2 - 2 + 4 = 2H.
        up = nn.ConvTranspose2d(out_channels, out_channels, 4, stride=2, padding=1, bias=False)
        if bilinear:
            _bilinear_(up.weight)
        super().__init__(
            conv,
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            up,
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Shortcut(nn.Sequential):
    """3×3 conv-BN-ReLU from a backbone stage to a neck stage's width (see
    ``CenterNetArchParams.skip_connections``). ``(B, C_in, H, W) → (B, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def _head(in_channels: int, hidden: int, out_channels: int, bias: float) -> nn.Sequential:
    """3×3 conv → ReLU → 1×1 conv; the last bias starts at ``bias``."""
    head = nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, out_channels, 1),
    )
    last = head[-1]
    assert isinstance(last, nn.Conv2d) and last.bias is not None  # built just above, bias=True
    nn.init.constant_(last.bias, bias)
    return head


class CenterNet(nn.Module):
    """CenterNet with a torchvision ResNet backbone (random init, or ``backbone_weights``: a
    torchvision state dict the user brought; nothing is downloaded).

    ``forward(images (B, 3, H, W) in [0, 1]) → {"heatmap": (B, C, H/4, W/4) logits,
    "wh": (B, 2, H/4, W/4), "offset": (B, 2, H/4, W/4)}``; see the module docstring.
    """

    stride = OUTPUT_STRIDE
    # ImageNet normalisation buffers (1, 3, 1, 1), registered in __init__.
    mean: torch.Tensor
    category_ids: torch.Tensor  # (C,) int64 buffers, see set_categories
    class_name_bytes: torch.Tensor  # (C, MAX_NAME_BYTES) uint8
    std: torch.Tensor

    def __init__(self, num_classes: int, params: CenterNetParams | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"CenterNet num_classes must be >= 1, got {num_classes}")
        self.params = params = params or CenterNetParams()
        self.num_classes = num_classes
        resnet = _BACKBONES[params.depth](weights=None)
        if params.backbone_weights is not None:
            load_backbone_weights(resnet, params.backbone_weights)
        # Everything up to layer4 (stride 32); the classifier (avgpool, fc) is not used.
        self.backbone = nn.Sequential(
            resnet.conv1,
            resnet.bn1,
            resnet.relu,
            resnet.maxpool,
            resnet.layer1,
            resnet.layer2,
            resnet.layer3,
            resnet.layer4,
        )
        in_ch = resnet.fc.in_features  # 512 for ResNet-18/34, 2048 for ResNet-50
        stages = []
        for out_ch in params.neck_channels:
            stages.append(UpStage(in_ch, out_ch, params.deform, params.bilinear_upsample_init))
            in_ch = out_ch
        self.neck = nn.Sequential(*stages)
        # Shortcuts into the neck stages from layer3, layer2, layer1 (strides 16, 8, 4), whose
        # widths are 256, 128, 64 times the block expansion (1 for ResNet-18/34, 4 for -50).
        self.shortcuts: nn.ModuleList | None = None
        if params.skip_connections:
            expansion = resnet.fc.in_features // 512
            widths = (256 * expansion, 128 * expansion, 64 * expansion)
            self.shortcuts = nn.ModuleList(
                Shortcut(c_in, c_out) for c_in, c_out in zip(widths, params.neck_channels)
            )
        prior_bias = -math.log((1 - params.prior_prob) / params.prior_prob)  # -2.19 for 0.1
        self.heatmap = _head(in_ch, params.head_conv, num_classes, prior_bias)
        self.wh = _head(in_ch, params.head_conv, 2, 0.0)
        self.offset = _head(in_ch, params.head_conv, 2, 0.0)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        # The dataset's categories travel with the weights (persistent buffers), so a
        # checkpoint maps its class indices to the dataset's ids and names without the data:
        # (C,) int64 category ids and (C, MAX_NAME_BYTES) UTF-8 names (see set_categories).
        self.register_buffer("category_ids", torch.arange(1, num_classes + 1))
        self.register_buffer(
            "class_name_bytes", torch.zeros(num_classes, MAX_NAME_BYTES, dtype=torch.uint8)
        )

    def set_categories(self, categories: Sequence[tuple[int, str]]) -> None:
        """Store ``(dataset category id, name)`` per class index (one per heatmap channel)."""
        if len(categories) != self.num_classes:
            raise ValueError(
                f"{len(categories)} categories for a CenterNet with {self.num_classes} classes"
            )
        names = torch.zeros_like(self.class_name_bytes)
        for i, (_, name) in enumerate(categories):
            raw = str(name).encode("utf-8")
            if len(raw) > MAX_NAME_BYTES:
                raise ValueError(
                    f"class name {name!r} is {len(raw)} bytes in UTF-8; CenterNet stores at most "
                    f"{MAX_NAME_BYTES} (shorten it in the dataset's categories)"
                )
            names[i, : len(raw)] = torch.tensor(list(raw), dtype=torch.uint8)
        ids = torch.tensor([int(c) for c, _ in categories], dtype=torch.int64)
        self.category_ids.copy_(ids.to(self.category_ids.device))
        self.class_name_bytes.copy_(names.to(self.class_name_bytes.device))

    @property
    def categories(self) -> list[tuple[int, str]]:
        """``(category id, name)`` per class index; an unset name reads ``class_<id>``."""
        out = []
        for cid, row in zip(self.category_ids.tolist(), self.class_name_bytes.cpu()):
            raw = bytes(row.tolist()).rstrip(b"\x00")
            out.append((int(cid), raw.decode("utf-8") if raw else f"class_{cid}"))
        return out

    def neck_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` → stride-4 features ``(B, neck_channels[-1],
        H/4, W/4)``: backbone, then the up-convolution neck (plus shortcuts if enabled)."""
        if self.shortcuts is None:
            return self.neck(self.backbone(x))
        skips = []
        for index, module in enumerate(self.backbone):
            x = module(x)
            if index in (4, 5, 6):  # layer1, layer2, layer3 of the Sequential above
                skips.append(x)
        for stage, shortcut, skip in zip(self.neck, self.shortcuts, reversed(skips), strict=True):
            x = stage(x) + shortcut(skip)
        return x

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"CenterNet expects images (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if not torch.jit.is_tracing() and (h % BACKBONE_STRIDE or w % BACKBONE_STRIDE):
            raise ValueError(
                f"CenterNet input height and width must be multiples of {BACKBONE_STRIDE}, "
                f"got {h}×{w} (pad the image; see pointforge/tasks/detection/predictor.py)"
            )
        feats = self.neck_features((images - self.mean) / self.std)
        return {"heatmap": self.heatmap(feats), "wh": self.wh(feats), "offset": self.offset(feats)}


def _factory(depth: int) -> Callable[..., CenterNet]:
    def build(num_classes: int, **params: Any) -> CenterNet:
        if "depth" in params and params["depth"] != depth:
            raise ValueError(
                f"centernet_resnet{depth} is fixed to depth {depth}, got depth={params['depth']}"
            )
        params.pop("depth", None)
        unknown = set(params) - set(CenterNetParams.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"centernet_resnet{depth}: unknown model params {sorted(unknown)}; "
                f"valid: {sorted(CenterNetParams.__dataclass_fields__)}"
            )
        if "neck_channels" in params:
            params["neck_channels"] = tuple(params["neck_channels"])
        return CenterNet(num_classes, replace(CenterNetParams(), depth=depth, **params))

    build.__name__ = build.__qualname__ = f"centernet_resnet{depth}"
    build.__doc__ = f"CenterNet on ResNet-{depth}; ``params`` are :class:`CenterNetParams` fields."
    return build


# Registered with their ``model.*`` keys (CenterNetArchParams; the depth is in the name).
centernet_resnet18 = MODELS.register("centernet_resnet18", params=CenterNetArchParams)(_factory(18))
centernet_resnet34 = MODELS.register("centernet_resnet34", params=CenterNetArchParams)(_factory(34))
centernet_resnet50 = MODELS.register("centernet_resnet50", params=CenterNetArchParams)(_factory(50))
