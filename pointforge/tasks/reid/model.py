"""BoT re-identification network: torchvision ResNet, last stride 1, avg/GeM pooling, BNNeck.

Why each piece (Luo et al. 2019, "Bag of Tricks and a Strong Baseline for Deep Person ReID"):

- **last stride 1** (§3.5): ``layer4`` keeps the resolution of ``layer3`` (a 256×128 input
  gives a 16×8 map instead of 8×4), more spatial detail for the same parameters;
- **pooling**: global average pooling (BoT) or generalised-mean pooling, GeM (Radenović et
  al. 2019), ``(mean x^p)^(1/p)`` with a learnable ``p`` initialised to 3 (their §3.2);
- **BNNeck** (§3.6): a BatchNorm1d after pooling whose bias is frozen at 0. The triplet loss
  sees the feature *before* it (Euclidean space), the identity classifier (no bias) the one
  after (a normalised, roughly hyperspherical space), which reconciles the two losses. At
  inference the post-BN feature is the embedding; the predictor L2-normalises it.
- the classifier is initialised with N(0, 0.001²) (BoT's released code), the BNNeck with
  weight 1 / bias 0.

Input ``(B, 3, H, W)``; ``train()`` forward → ``{"features": (B, D) pre-BN, "logits": (B,
num_classes)}``; ``eval()`` forward → ``(B, D)`` post-BN features. ``D`` = 512 (ResNet-18)
or 2048 (ResNet-50), or ``embedding_dim`` when a linear reduction is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet, resnet18, resnet50

from pointforge.models.backbone_weights import load_backbone_weights
from pointforge.registry import MODELS

_BUILDERS = {18: resnet18, 50: resnet50}
CLASSIFIER_INIT_STD = 0.001  # BoT's released code (michuanhaohao/reid-strong-baseline)
GEM_P = 3.0  # Radenović et al. 2019, initial p for GeM
GEM_EPS = 1e-6  # clamp before the power: x^p is undefined for x < 0 and has no gradient at 0


@dataclass(frozen=True)
class ReIDNetParams:
    """Parameters of :class:`ReIDNet` (keys under ``model.``)."""

    # ResNet depth of the torchvision backbone; BoT uses 50, 18 trains quickly on CPU.
    depth: int = field(default=50, metadata={"choices": (18, 50)})
    # Global pooling: "avg" (BoT) or "gem" (generalised mean, learnable p).
    pooling: str = field(default="avg", metadata={"choices": ("avg", "gem")})
    # Initial GeM exponent (Radenović et al. 2019); ignored for "avg".
    gem_p: float = GEM_P
    # 0: the embedding is the pooled backbone feature (BoT); > 0: a bias-free linear layer
    # reduces it to this size before the BNNeck.
    embedding_dim: int = 0
    # Stride of layer4's first block: 1 (BoT's "last stride" trick) or 2 (torchvision).
    last_stride: int = field(default=1, metadata={"choices": (1, 2)})
    # Optional torchvision ResNet state dict (e.g. ImageNet weights copied by the user; nothing
    # is downloaded), fitted by pointforge/models/backbone_weights.py: its "fc." keys are
    # ignored; any other missing/unexpected/mismatched key is an error naming the file.
    backbone_weights: str | None = None


class GeneralizedMeanPooling(nn.Module):
    """GeM: ``(B, C, H, W)`` → ``(B, C)``, ``(mean_hw clamp(x, eps)^p)^(1/p)``, learnable p."""

    def __init__(self, p: float = GEM_P, eps: float = GEM_EPS) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


def set_last_stride(model: ResNet, stride: int) -> None:
    """Set the stride of ``layer4``'s first block (its strided conv and its downsample)."""
    block = model.layer4[0]
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (stride, stride)


class ReIDNet(nn.Module):
    """Backbone → pooling → (reduction) → BNNeck → classifier; see the module docstring."""

    def __init__(self, num_classes: int, params: ReIDNetParams | None = None) -> None:
        super().__init__()
        params = params or ReIDNetParams()
        if params.depth not in _BUILDERS:
            raise ValueError(f"model.depth must be one of {sorted(_BUILDERS)}, got {params.depth}")
        if params.pooling not in ("avg", "gem"):
            raise ValueError(f"model.pooling must be 'avg' or 'gem', got {params.pooling!r}")
        if params.last_stride not in (1, 2):
            raise ValueError(f"model.last_stride must be 1 or 2, got {params.last_stride}")
        if num_classes < 1:
            raise ValueError(
                f"ReIDNet: num_classes (training identities) must be >= 1, got {num_classes}"
            )
        if params.embedding_dim < 0:
            raise ValueError(f"model.embedding_dim must be >= 0, got {params.embedding_dim}")
        self.params = params
        resnet = _BUILDERS[params.depth](weights=None)
        if params.backbone_weights is not None:
            load_backbone_weights(resnet, params.backbone_weights)
        set_last_stride(resnet, params.last_stride)
        self.backbone = nn.Sequential(
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4,
        )  # fmt: skip
        channels = resnet.fc.in_features
        self.pool: nn.Module = (
            GeneralizedMeanPooling(params.gem_p) if params.pooling == "gem" else nn.Identity()
        )
        dim = params.embedding_dim or channels
        self.reduction: nn.Module = nn.Identity()
        if params.embedding_dim:
            linear = nn.Linear(channels, dim, bias=False)
            nn.init.kaiming_normal_(linear.weight, mode="fan_out")
            self.reduction = linear
        self.bnneck = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        self.bnneck.bias.requires_grad_(False)  # BoT §3.6: no shift, so the BN only scales
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=CLASSIFIER_INIT_STD)
        self.embedding_dim = dim

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → ``(B, C, H/16, W/16)`` (last stride 1) or ``/32`` (stride 2)."""
        return self.backbone(images)

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → ``(B, D)``: the pre-BNNeck feature the triplet loss sees."""
        fmap = self.feature_map(images)
        if self.params.pooling == "gem":
            vec = self.pool(fmap)
        else:
            vec = F.adaptive_avg_pool2d(fmap, 1).flatten(1)
        return self.reduction(vec)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor] | torch.Tensor:
        features = self.pooled(images)
        normed = self.bnneck(features)
        if not self.training:
            return normed
        return {"features": features, "logits": self.classifier(normed)}


def _build(depth: int, num_classes: int, params: dict[str, Any]) -> ReIDNet:
    given = params.pop("depth", depth)
    if given != depth:
        raise ValueError(f"model reid_resnet{depth} was given model.depth={given}")
    return ReIDNet(num_classes, replace(ReIDNetParams(depth=depth), **params))


@dataclass(frozen=True)
class ReIDModelKeys:
    """The ``model.`` config keys of ``reid_resnet18`` / ``reid_resnet50``: the fields of
    :class:`ReIDNetParams` except ``depth``, which the model name fixes."""

    pooling: str = field(default="avg", metadata={"choices": ("avg", "gem")})  # BoT: avg
    gem_p: float = GEM_P  # Radenović et al. 2019
    embedding_dim: int = 0  # 0: BoT's pooled feature (512 / 2048)
    last_stride: int = field(default=1, metadata={"choices": (1, 2)})  # BoT §3.5: 1
    # A torchvision ResNet state dict of the model's depth (fc.* ignored), applied at
    # construction, before model.weights; null = from scratch. Nothing is downloaded.
    backbone_weights: str | None = None


@MODELS.register("reid_resnet18", params=ReIDModelKeys)
def reid_resnet18(num_classes: int, **params: Any) -> ReIDNet:
    """BoT ReID network on ResNet-18 (D = 512); ``params``: fields of :class:`ReIDNetParams`."""
    return _build(18, num_classes, dict(params))


@MODELS.register("reid_resnet50", params=ReIDModelKeys)
def reid_resnet50(num_classes: int, **params: Any) -> ReIDNet:
    """BoT ReID network on ResNet-50 (D = 2048); ``params``: fields of :class:`ReIDNetParams`."""
    return _build(50, num_classes, dict(params))
