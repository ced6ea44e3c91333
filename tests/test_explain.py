"""Grad-CAM on hand-made nets whose correct map is known exactly, and the overlay."""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from pointforge.explain import default_target_layer, grad_cam, overlay_cam


def two_region_net(pool: int = 1) -> nn.Sequential:
    """Channel 0 fires on bright pixels, channel 1 on dark ones; class k = mean of channel k.

    With a +1 square and a -1 square in the image, class 0 depends only on the bright square
    and class 1 only on the dark one, so their Grad-CAM maps must be exactly those squares.
    """
    conv = nn.Conv2d(1, 2, 1)
    head = nn.Linear(2, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    block = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(pool))
    return nn.Sequential(block, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def two_region_image() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    image = torch.zeros(1, 1, 16, 16)
    bright = np.zeros((16, 16), bool)
    bright[2:10, 2:10] = True  # larger, so class 0 scores highest
    dark = np.zeros((16, 16), bool)
    dark[10:14, 10:14] = True
    image[0, 0][torch.from_numpy(bright)] = 1.0
    image[0, 0][torch.from_numpy(dark)] = -1.0
    return image, bright, dark


def test_cam_is_exactly_the_region_the_class_depends_on() -> None:
    net = two_region_net()
    image, bright, dark = two_region_image()
    res = grad_cam(net, image)  # default: top class, last conv block
    assert res.target_layer == "0" and res.class_index == 0
    assert res.score == pytest.approx(64 / 256)
    np.testing.assert_array_equal(res.cam, bright.astype(np.float32))
    res1 = grad_cam(net, image, target_layer="0", class_index=1)
    np.testing.assert_array_equal(res1.cam, dark.astype(np.float32))
    assert res1.cam.dtype == np.float32 and res1.cam.shape == (16, 16)


def test_coarse_layer_is_upsampled_to_the_image() -> None:
    net = two_region_net(pool=2)  # 8x8 map for a 16x16 image
    image, bright, _ = two_region_image()
    cam = grad_cam(net, image, class_index=0).cam
    assert cam.shape == (16, 16) and cam.max() == pytest.approx(1.0)
    assert cam[bright].mean() > 0.8 and cam[~bright].mean() < 0.1
    assert np.unravel_index(cam.argmax(), cam.shape) in {(r, c) for r, c in zip(*bright.nonzero())}


def test_model_state_is_left_alone_and_bad_input_is_named() -> None:
    net = two_region_net()
    net.train()
    image, _, _ = two_region_image()
    grad_cam(net, image)
    assert net.training and all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="out of range for 2 classes"):
        grad_cam(net, image, class_index=5)
    with pytest.raises(ValueError, match=r"one image \(1, C, H, W\)"):
        grad_cam(net, image.repeat(2, 1, 1, 1))
    with pytest.raises(ValueError, match="no module named 'layer9'"):
        grad_cam(net, image, target_layer="layer9")
    with pytest.raises(ValueError, match="feature map"):
        grad_cam(net, image, target_layer="3")  # the linear head is not spatial


def test_default_target_layer_prefers_layer4() -> None:
    # ResNet layout: layer4 is the last conv block even though children follow it.
    resnet_like = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 3),
            layer4=nn.Sequential(nn.Conv2d(4, 4, 3)),
            head=nn.Sequential(nn.Conv2d(4, 2, 1), nn.Flatten()),
        )
    )
    assert default_target_layer(resnet_like) == "layer4"
    assert default_target_layer(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1))) == "1"
    with pytest.raises(ValueError, match="no convolutional block"):
        default_target_layer(nn.Sequential(nn.Linear(2, 2)))


def test_overlay_uses_the_jet_colormap() -> None:
    grey = np.full((6, 8), 100, np.uint8)
    cam = np.zeros((3, 4), np.float32)
    cam[:, 2:] = 1.0  # right half hot (resized to the image)
    full = overlay_cam(grey, cam, alpha=1.0)
    assert full.shape == (6, 8, 3) and full.dtype == np.uint8
    jet = cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_JET)[0]
    np.testing.assert_array_equal(full[0, 0], jet[0])  # cold = blue
    np.testing.assert_array_equal(full[0, 7], jet[1])  # hot = red
    assert full[0, 7, 2] > full[0, 7, 0] and full[0, 0, 0] > full[0, 0, 2]
    np.testing.assert_array_equal(overlay_cam(grey, cam, alpha=0.0), np.dstack([grey] * 3))
    with pytest.raises(ValueError, match="uint8"):
        overlay_cam(grey.astype(np.float32), cam)
