"""transforms.v2 classification pipelines: channel policy, normalisation, seeded augmentation."""

from __future__ import annotations

import pytest
import torch

from pointforge.data.transforms.classification import ToChannels, build_classification_transform
from pointforge.tasks.classification.options import ClassificationConfig


def test_channel_policy() -> None:
    grey = torch.arange(12, dtype=torch.uint8).view(1, 3, 4)
    rgb = ToChannels(3)(grey)
    assert rgb.shape == (3, 3, 4) and all(torch.equal(rgb[c], grey[0]) for c in range(3))
    assert ToChannels(1)(grey) is grey
    colour = torch.stack([torch.full((2, 2), v, dtype=torch.uint8) for v in (255, 0, 0)])
    luma = ToChannels(1)(colour)
    assert luma.shape == (1, 2, 2) and int(luma[0, 0, 0]) == 76  # 0.299 * 255, ITU-R 601
    with pytest.raises(ValueError, match=r"expected a \(1\|3, H, W\) image"):
        ToChannels(3)(torch.zeros(2, 4, 4, dtype=torch.uint8))


def test_eval_pipeline_is_deterministic_and_normalised() -> None:
    cfg = ClassificationConfig(in_channels=1, mean=(0.5,), std=(0.25,))
    tf = build_classification_transform(cfg, (8, 12), train=False)
    image = torch.full((1, 20, 30), 255, dtype=torch.uint8)
    out = tf(image)
    assert out.shape == (1, 8, 12) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, (1.0 - 0.5) / 0.25))
    assert torch.equal(tf(image), out)


@pytest.mark.parametrize("augment", ["affine", "crop_flip"])
def test_train_augmentation_follows_the_torch_seed(augment: str) -> None:
    cfg = ClassificationConfig(in_channels=3, augment=augment, rotation=30.0)
    tf = build_classification_transform(cfg, (16, 16), train=True)
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 16, 16), generator=g, dtype=torch.uint8)
    torch.manual_seed(1)
    a = tf(image)
    torch.manual_seed(1)
    b = tf(image)
    torch.manual_seed(2)
    c = tf(image)
    assert a.shape == (3, 16, 16)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_no_augmentation_when_disabled() -> None:
    cfg = ClassificationConfig(in_channels=1, mean=(0.0,), std=(1.0,), augment="none")
    tf = build_classification_transform(cfg, (16, 16), train=True)
    image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8)
    assert torch.allclose(tf(image), image.float() / 255)
