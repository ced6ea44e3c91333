"""Detection transforms keep boxes on their pixels: a white box on black is augmented and the
transformed box must still bound the white pixels; boxes that leave the crop are dropped."""

from __future__ import annotations

import random

import pytest
import torch

from pointforge.tasks.detection.data import (
    AugmentParams,
    CenterNetTrainTransform,
    LetterboxTransform,
    build_transform,
)


def _white_box_image(h: int = 80, w: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.zeros(3, h, w, dtype=torch.uint8)
    img[:, 20:50, 30:70] = 255  # pixels x 30..69, y 20..49 -> xyxy (30, 20, 70, 50)
    return img, torch.tensor([[30.0, 20.0, 70.0, 50.0]])


def _bright_bounds(image: torch.Tensor) -> torch.Tensor | None:
    ys, xs = torch.nonzero(image.mean(0) > 0.5, as_tuple=True)
    if len(xs) == 0:
        return None
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def test_train_augmentation_moves_boxes_with_pixels() -> None:
    img, boxes = _white_box_image()
    geometric_only = AugmentParams(color_jitter=0.0, lighting_std=0.0)
    tf = CenterNetTrainTransform((64, 64), geometric_only)
    dropped = 0
    for seed in range(40):
        random.seed(seed)
        torch.manual_seed(seed)
        out = tf(img, boxes, torch.tensor([3]))
        assert out["image"].shape == (3, 64, 64) and out["image"].dtype == torch.float32
        bright = _bright_bounds(out["image"])
        if len(out["boxes"]) == 0:
            dropped += 1
            # Dropped only if (almost) nothing of the box is left in the crop.
            assert bright is None or (bright[2:] - bright[:2]).min() <= 2
            continue
        assert out["labels"].tolist() == [3]
        assert bright is not None
        # Bilinear resampling blurs edges by about a pixel.
        torch.testing.assert_close(out["boxes"][0], bright, atol=1.5, rtol=0)
    assert dropped < 40


def test_flip_and_colour_are_applied() -> None:
    img, boxes = _white_box_image()
    tf = CenterNetTrainTransform((64, 64), AugmentParams(scale_range=(1, 1), crop_border=0.49))
    seen_flip = set()
    for seed in range(20):
        random.seed(seed)
        torch.manual_seed(seed)
        out = tf(img, boxes, torch.tensor([0]))
        cx = float(out["boxes"][0, [0, 2]].mean())
        seen_flip.add(cx > 32)
    assert seen_flip == {True, False}  # the box is left of centre unless flipped
    plain = CenterNetTrainTransform((64, 64), AugmentParams(color_jitter=0.0, lighting_std=0.0))
    random.seed(0)
    torch.manual_seed(0)
    a = tf(img, boxes, torch.tensor([0]))["image"]
    random.seed(0)
    torch.manual_seed(0)
    b = plain(img, boxes, torch.tensor([0]))["image"]
    assert not torch.allclose(a, b)


def test_letterbox_is_deterministic_and_maps_back() -> None:
    img, boxes = _white_box_image()  # 120x80 -> 96x64 then padded to 96x96 (H=96, W=96)
    tf = LetterboxTransform((96, 96))
    out = tf(img, boxes, torch.tensor([1]))
    assert out["image"].shape == (3, 96, 96)
    assert out["scale"].tolist() == pytest.approx([0.8, 0.8])
    torch.testing.assert_close(out["boxes"], torch.tensor([[24.0, 16.0, 56.0, 40.0]]))
    torch.testing.assert_close(out["boxes"] / out["scale"].repeat(2), boxes)
    torch.testing.assert_close(_bright_bounds(out["image"]), out["boxes"][0], atol=1, rtol=0)
    assert out["image"][:, 64:, :].abs().max() == 0  # bottom padding
    torch.testing.assert_close(tf(img, boxes, torch.tensor([1]))["image"], out["image"])


def test_build_transform_and_bad_params() -> None:
    assert isinstance(build_transform((32, 32), train=True), CenterNetTrainTransform)
    assert isinstance(build_transform((32, 32), train=False), LetterboxTransform)
    off = AugmentParams(enabled=False)
    assert isinstance(build_transform((32, 32), train=True, augment=off), LetterboxTransform)
    with pytest.raises(ValueError, match="scale_range"):
        CenterNetTrainTransform((32, 32), AugmentParams(scale_range=(1.4, 0.6)))
    with pytest.raises(ValueError, match="uint8"):
        LetterboxTransform((32, 32))(torch.zeros(3, 8, 8), torch.zeros(0, 4), torch.zeros(0))
