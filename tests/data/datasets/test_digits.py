"""Built-in digits: sizes, labels, a disjoint deterministic hold-out, and the split helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointforge.data.datasets.digits import DigitsDataset, load_digit_images
from pointforge.data.datasets.splits import stratified_split
from pointforge.data.transforms.classification import build_classification_transform
from pointforge.tasks.classification.options import ClassificationConfig


def test_train_and_val_partition_all_digits() -> None:
    train, val = DigitsDataset("train"), DigitsDataset("val")
    assert len(train) + len(val) == 1797
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted([*train.indices, *val.indices]) == list(range(1797))
    # Stratified: each class holds out round(20 %) of its ~180 images.
    counts = np.bincount(val.labels, minlength=10)
    _, labels = load_digit_images()
    assert counts.tolist() == [round(int(n) * 0.2) for n in np.bincount(labels)]
    item = train[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (1, 8, 8)
    assert int(item["image"].max()) <= 255 and item["label"] == int(train.labels[0])
    assert train.classes == [str(i) for i in range(10)] and train.num_classes == 10


def test_split_is_deterministic_and_seeded() -> None:
    a, b = DigitsDataset("val", split_seed=0), DigitsDataset("val", split_seed=0)
    assert np.array_equal(a.indices, b.indices)
    assert torch.equal(a.images, b.images)
    c = DigitsDataset("val", split_seed=1)
    assert not np.array_equal(a.indices, c.indices)
    _, labels = load_digit_images()
    expected = sum(round(int(n) * 0.5) for n in np.bincount(labels))
    assert len(DigitsDataset("val", val_fraction=0.5)) == expected


def test_images_match_sklearn_pixels() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = DigitsDataset("train")
    i = int(ds.indices[3])
    expected = np.rint(raw.images[i] * 255 / 16).astype(np.uint8)
    assert np.array_equal(ds[3]["image"][0].numpy(), expected)
    assert ds[3]["label"] == raw.target[i]


def test_transform_upsamples_and_normalises() -> None:
    cfg = ClassificationConfig(in_channels=3, augment="none")
    tf = build_classification_transform(cfg, (16, 16), train=False)
    ds = DigitsDataset("val", transform=tf)
    image = ds[0]["image"]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    mean, std = torch.tensor(cfg.mean)[:, None, None], torch.tensor(cfg.std)[:, None, None]
    pixels = image * std + mean  # back to [0, 1]
    assert torch.allclose(pixels[0], pixels[1], atol=1e-5)  # grey replicated to RGB
    assert torch.allclose(pixels[0], pixels[2], atol=1e-5)
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5
    raw = ds.images[0].float() / 255  # (1, 8, 8): 2x bilinear upsampling keeps the mean ink
    assert abs(float(pixels[0].mean()) - float(raw.mean())) < 0.02


def test_root_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"data.root.*digits dataset is built in"):
        DigitsDataset("train", root="/some/folder")


def test_stratified_split_edge_cases() -> None:
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 2])  # class 2 has a single sample
    train = stratified_split(labels, "train", 0.2, seed=3)
    val = stratified_split(labels, "val", 0.2, seed=3)
    assert sorted([*train, *val]) == list(range(8))
    assert np.bincount(labels[val], minlength=3).tolist() == [1, 1, 0]
    assert 7 in train  # the single sample of class 2 is never held out
    with pytest.raises(ValueError, match="split must be one of"):
        stratified_split(labels, "test", 0.2, seed=0)
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(labels, "val", 1.0, seed=0)
