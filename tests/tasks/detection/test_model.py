"""CenterNet model: shapes, initialisation, DCN variant, registry, and a tiny overfit run."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import box_iou

from pointforge.registry import MODELS
from pointforge.tasks.detection.decode import detect
from pointforge.tasks.detection.losses import centernet_losses
from pointforge.tasks.detection.model import CenterNet, CenterNetParams, ModulatedDeformConv3x3
from pointforge.tasks.detection.targets import build_targets


@pytest.mark.parametrize("name", ["centernet_resnet18", "centernet_resnet50"])
def test_output_shapes(name: str) -> None:
    model = MODELS.build(name, 3).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "heatmap": (2, 3, 16, 24),
        "wh": (2, 2, 16, 24),
        "offset": (2, 2, 16, 24),
    }
    assert model.params.depth == int(name.removeprefix("centernet_resnet"))


def test_initialisation() -> None:
    model = CenterNet(4)
    bias = model.heatmap[-1].bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(9)))  # prior 0.1 → -2.197
    assert abs(float(bias[0].detach()) + 2.19) < 0.01
    # Bilinear up-convolution: a constant map stays constant away from the border.
    up = model.neck[0][3]
    x = torch.ones(1, up.in_channels, 6, 6)
    y = up(x)
    assert y.shape[-1] == 12
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.ones_like(y[:, :, 2:-2, 2:-2]))


@pytest.mark.parametrize("name", ["centernet_resnet18", "centernet_resnet50"])
def test_skip_connections_feed_the_neck(name: str) -> None:
    """The shortcuts carry layer3/2/1 into the neck; without them the state dict is the
    paper's (no ``shortcuts.*`` keys), so checkpoints of either variant load as before."""
    torch.manual_seed(0)
    plain = MODELS.build(name, 3)
    assert plain.shortcuts is None
    assert not any(k.startswith("shortcuts.") for k in plain.state_dict())
    model = MODELS.build(name, 3, skip_connections=True).eval()
    assert model.shortcuts is not None and len(model.shortcuts) == 3
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        before = model(image)["heatmap"]
        # Silencing the stride-4 shortcut (from layer1) must change the output: it is used.
        model.shortcuts[2][1].weight.zero_()
        model.shortcuts[2][1].bias.fill_(-10.0)  # BN output < 0 → ReLU gives 0
        after = model(image)["heatmap"]
    assert before.shape == after.shape == (1, 3, 16, 24)
    assert not torch.allclose(before, after)
    # And its first conv reads layer1's width: 64 channels × the block expansion.
    assert model.shortcuts[2][0].in_channels == (256 if name.endswith("50") else 64)


def test_bad_input_and_params_are_named() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        CenterNet(2)(torch.rand(1, 3, 48, 64))
    with pytest.raises(ValueError, match=r"model\.depth"):
        CenterNetParams(depth=101)
    with pytest.raises(TypeError, match="unknown model params"):
        MODELS.build("centernet_resnet18", 2, head_channels=32)
    with pytest.raises(ValueError, match="fixed to depth 18"):
        MODELS.build("centernet_resnet18", 2, depth=50)


def test_deformable_variant_forward_backward() -> None:
    model = MODELS.build("centernet_resnet18", 2, deform=True)
    dcn = [m for m in model.modules() if isinstance(m, ModulatedDeformConv3x3)]
    assert len(dcn) == 3
    # At init (zero offsets, mask 0.5) a DCN layer is half a plain 3×3 conv with its weights.
    layer = dcn[1]
    x = torch.randn(1, layer.conv.in_channels, 5, 5)
    plain = torch.nn.functional.conv2d(x, layer.conv.weight, padding=1)
    torch.testing.assert_close(layer(x), 0.5 * plain, atol=1e-4, rtol=1e-4)
    out = model(torch.rand(2, 3, 64, 64))
    t = build_targets([torch.tensor([[8.0, 8, 40, 40]])] * 2, [torch.tensor([1])] * 2, 2, (64, 64))
    sum(centernet_losses(out, t).values()).backward()
    for m in dcn:  # offsets/mask get gradients, so they can learn to move the taps
        assert m.offset_mask.weight.grad is not None
        assert m.offset_mask.weight.grad.abs().sum() > 0


def _rectangles() -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Two 64×64 grey images with red (class 0) and blue (class 1) filled rectangles."""
    images = torch.full((2, 3, 64, 64), 0.5)
    boxes = [torch.tensor([[8.0, 12, 40, 44]]), torch.tensor([[20.0, 4, 60, 36], [4, 40, 28, 60]])]
    labels = [torch.tensor([0]), torch.tensor([1, 0])]
    colours = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    for i in range(2):
        for box, label in zip(boxes[i], labels[i]):
            x1, y1, x2, y2 = box.int().tolist()
            images[i, :, y1:y2, x1:x2] = colours[label][:, None, None]
    return images, boxes, labels


def test_tiny_overfit() -> None:
    """25 Adam steps on two images: the loss falls and decoding finds the boxes."""
    torch.manual_seed(0)
    images, boxes, labels = _rectangles()
    model = MODELS.build("centernet_resnet18", 2)
    targets = build_targets(boxes, labels, 2, (64, 64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = last = 0.0
    for step in range(25):
        loss = sum(centernet_losses(model(images), targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if step == 0 else first
        last = float(loss.detach())
    assert last < 0.1 * first
    # Decoded with batch statistics (train mode): at 64×64 layer4 is 2×2, and BN's running
    # variance (unbiased, ×8/7 over 8 values) is not the batch variance the fit used.
    det = detect(model, images, k=10)
    for i in range(2):
        n = boxes[i].shape[0]
        assert sorted(det["labels"][i, :n].tolist()) == sorted(labels[i].tolist())
        assert (det["scores"][i, :n] > 0.5).all() and (det["scores"][i, n:] < 0.3).all()
        iou = box_iou(det["boxes"][i, :n], boxes[i])
        assert (iou.max(dim=0).values > 0.5).all(), iou
