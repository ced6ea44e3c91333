from __future__ import annotations

import math

import pytest
import torch

from pointforge.geometry.homography import (
    HomographyConfig,
    filter_points,
    homography_from_points,
    sample_homography,
    valid_mask,
    warp_images,
    warp_points,
)


def rigid(tx: float, ty: float, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]]])


def test_sampler_is_batched_deterministic_and_invertible() -> None:
    cfg = HomographyConfig()
    a = sample_homography(100, 120, 160, cfg, torch.Generator().manual_seed(3))
    b = sample_homography(100, 120, 160, cfg, torch.Generator().manual_seed(3))
    assert a.shape == (100, 3, 3) and torch.equal(a, b)
    assert torch.linalg.det(a).abs().min() > 1e-6
    assert not torch.allclose(a[0], a[1])
    p = torch.rand(100, 7, 2) * 150
    back = warp_points(warp_points(p, a), torch.linalg.inv(a))
    assert torch.allclose(back, p, atol=1e-2)


def test_no_artifacts_keeps_the_patch_inside() -> None:
    cfg = HomographyConfig(allow_artifacts=False, valid_border_margin=0)
    H = sample_homography(20, 60, 80, cfg, torch.Generator().manual_seed(0))
    assert valid_mask(H, 60, 80).min() == 1.0  # every warped pixel comes from the source


def test_homography_from_points_is_exact() -> None:
    src = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]])
    dst = torch.tensor([[[1.0, 2.0], [12.0, 1.0], [11.0, 13.0], [0.0, 9.0]]])
    assert torch.allclose(warp_points(src, homography_from_points(src, dst)), dst, atol=1e-4)


def test_warped_image_samples_the_source_at_the_inverse_point() -> None:
    """out(p) = in(H⁻¹ p): checked on a smooth analytic image at every pixel."""
    h, w = 48, 64
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")

    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sin(x / 9.0) + torch.cos(y / 7.0)

    H = rigid(5.0, -3.0, 0.2)
    out = warp_images(f(xs, ys)[None, None], H)[0, 0]
    src = warp_points(torch.stack([xs, ys], -1).reshape(1, -1, 2), torch.linalg.inv(H))[0]
    inside = (src[:, 0] >= 1) & (src[:, 0] <= w - 2) & (src[:, 1] >= 1) & (src[:, 1] <= h - 2)
    expected = f(src[:, 0], src[:, 1])
    assert inside.sum() > 1000
    assert (out.reshape(-1)[inside] - expected[inside]).abs().max() < 0.01  # bilinear error


def test_pure_translation_moves_pixels_exactly() -> None:
    img = torch.zeros(1, 1, 20, 20)
    img[0, 0, 5, 7] = 1.0
    out = warp_images(img, rigid(3.0, 2.0, 0.0))
    assert out[0, 0, 7, 10] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


def test_valid_mask_and_erosion() -> None:
    H = rigid(10.0, 0.0, 0.0)
    m = valid_mask(H, 16, 32)
    assert m[0, 0, :, :10].sum() == 0 and m[0, 0, :, 10:].min() == 1
    eroded = valid_mask(H, 16, 32, erode=2)
    assert (
        eroded[0, 0, 8, 11] == 0 and eroded[0, 0, 8, 12] == 1 and eroded[0, 0, 0, 20] == 1
    )  # frame not eroded


def test_filter_points() -> None:
    p = torch.tensor([[0.0, 0.0], [31.0, 15.0], [31.5, 1.0], [-0.1, 3.0]])
    assert filter_points(p, 16, 32).tolist() == [True, True, False, False]
