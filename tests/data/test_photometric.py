from __future__ import annotations

import numpy as np
import pytest

from pointforge.data.transforms.photometric import PhotometricConfig, photometric_augment


def test_deterministic_uint8_and_changes_the_image() -> None:
    img = np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1))
    a = photometric_augment(img, np.random.default_rng(7), PhotometricConfig())
    b = photometric_augment(img, np.random.default_rng(7), PhotometricConfig())
    c = photometric_augment(img, np.random.default_rng(8), PhotometricConfig())
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a.astype(int) - img).mean() > 1


def test_zero_strength_is_identity() -> None:
    img = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    cfg = PhotometricConfig(
        brightness=0.0,
        contrast=(1.0, 1.0),
        noise_std=(0.0, 0.0),
        speckle_prob=(0.0, 0.0),
        shade_transparency=(0.0, 0.0),
        motion_blur_max=1,
    )
    assert np.array_equal(photometric_augment(img, np.random.default_rng(1), cfg), img)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        photometric_augment(
            np.zeros((4, 4), np.float32), np.random.default_rng(0), PhotometricConfig()
        )
