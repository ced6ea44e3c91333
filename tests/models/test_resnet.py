"""The registered torchvision ResNets: contract names, output shapes and the stem switches."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import ResNet, resnet18

import pointforge.models.resnet  # noqa: F401  (registers the models)
from pointforge.registry import MODELS


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_registered_resnets_are_torchvision_resnets(name: str) -> None:
    model = MODELS.build(name, num_classes=7)
    assert isinstance(model, ResNet)
    assert model.fc.out_features == 7
    assert model.conv1.kernel_size == (7, 7) and isinstance(model.maxpool, nn.MaxPool2d)


def test_default_stem_matches_torchvision_state_dict() -> None:
    ours = MODELS.build("resnet18", num_classes=10).state_dict()
    ref = resnet18(weights=None, num_classes=10).state_dict()
    assert ours.keys() == ref.keys()
    assert all(ours[k].shape == ref[k].shape for k in ref)


def test_small_input_stem_keeps_resolution() -> None:
    model = MODELS.build("resnet18", num_classes=10, in_channels=1, small_input=True).eval()
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.in_channels == 1 and isinstance(model.maxpool, nn.Identity)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        feats = model.layer4(model.layer3(model.layer2(model.layer1(stem))))
        logits = model(x)
    assert stem.shape == (2, 64, 16, 16)  # the ImageNet stem would give 4x4 here
    assert feats.shape == (2, 512, 2, 2)
    assert logits.shape == (2, 10)


def test_grey_input_with_imagenet_stem() -> None:
    model = MODELS.build("resnet34", num_classes=3, in_channels=1).eval()
    assert model.conv1.in_channels == 1 and model.conv1.stride == (2, 2)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"in_channels": 2}, "in_channels must be 1 or 3"), ({"num_classes": 0}, "num_classes")],
)
def test_bad_arguments_are_named(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MODELS.build("resnet18", **kwargs)
