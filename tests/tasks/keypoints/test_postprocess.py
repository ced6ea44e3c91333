from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pointforge.tasks.keypoints.postprocess import (
    extract_keypoints,
    logits_to_heatmap,
    max_pool_nms,
    refine_subpixel,
    sample_descriptors,
)


def heat_with(peaks: list[tuple[int, int, float]], h: int = 32, w: int = 40) -> torch.Tensor:
    heat = torch.zeros(1, h, w)
    for x, y, v in peaks:
        heat[0, y, x] = v
    return heat


def test_heatmap_is_inverse_of_label_layout() -> None:
    logits = torch.full((1, 65, 2, 3), -20.0)
    logits[0, 64] = 20.0  # dustbin everywhere ...
    logits[0, 64, 1, 2] = -20.0
    logits[0, 3 * 8 + 5, 1, 2] = 20.0  # ... except cell (1, 2): pixel dy=3, dx=5
    heat = logits_to_heatmap(logits)
    assert heat.shape == (1, 16, 24)
    y, x = divmod(int(heat.flatten().argmax()), 24)
    assert (x, y) == (2 * 8 + 5, 1 * 8 + 3) and heat.max() > 0.99


def test_nms_keeps_the_stronger_of_close_peaks() -> None:
    heat = heat_with([(10, 10, 0.9), (13, 10, 0.5), (20, 10, 0.6), (25, 20, 0.7)])
    out = max_pool_nms(heat, radius=4)
    assert out[0, 10, 10] == 0.9 and out[0, 10, 13] == 0  # 3 px apart: weaker suppressed
    assert out[0, 10, 20] == 0.6 and out[0, 20, 25] == 0.7  # 10 px apart: both kept
    assert int((out > 0).sum()) == 3
    assert torch.equal(max_pool_nms(heat, 0), heat)


def square_pool_nms(heat: torch.Tensor, radius: int) -> torch.Tensor:
    """Reference NMS with one ``(2r+1)²`` ``max_pool2d`` per pool (the unseparated form)."""

    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0]

    zeros = torch.zeros_like(heat)
    keep = heat == pool(heat)
    for _ in range(2):
        suppressed = pool(keep.to(heat.dtype)) > 0
        candidates = torch.where(suppressed, zeros, heat)
        keep = keep | ((candidates == pool(candidates)) & ~suppressed)
    return torch.where(keep, heat, zeros)


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_separable_nms_equals_square_window_nms(radius: int) -> None:
    gen = torch.Generator().manual_seed(radius)
    # Quantised values create ties and plateaus; odd sizes and a 5-wide map exercise the
    # edges, where the window is cut off by the padding.
    for shape in [(2, 37, 51), (1, 5, 40), (1, 40, 5)]:
        heat = (torch.rand(shape, generator=gen) * 8).floor() / 8
        assert torch.equal(max_pool_nms(heat, radius), square_pool_nms(heat, radius))


def test_extract_threshold_border_topk_and_order() -> None:
    heat = heat_with([(1, 1, 0.99), (10, 10, 0.3), (20, 20, 0.8), (30, 12, 0.6), (30, 25, 0.01)])
    ((kpts, scores),) = extract_keypoints(heat, threshold=0.05, border=4, top_k=None, nms_radius=4)
    assert kpts.tolist() == [[20, 20], [30, 12], [10, 10]]  # (x, y), border point dropped
    assert torch.all(scores[:-1] >= scores[1:]) and scores.dtype == torch.float32
    ((k2, _),) = extract_keypoints(heat, threshold=0.05, border=4, top_k=2, nms_radius=4)
    assert k2.tolist() == [[20, 20], [30, 12]]


def test_batch_equals_per_image() -> None:
    torch.manual_seed(0)
    heat = torch.rand(3, 24, 32) ** 4
    batch = extract_keypoints(heat, 0.2, 2, 50, 3)
    for i in range(3):
        ((k, s),) = extract_keypoints(heat[i : i + 1], 0.2, 2, 50, 3)
        assert torch.equal(k, batch[i][0]) and torch.equal(s, batch[i][1])


def test_descriptors_at_cell_centres_read_that_cell() -> None:
    desc = F.normalize(torch.randn(1, 8, 3, 4), dim=1)
    # cell (i, j) describes pixel centre (8j + 3.5, 8i + 3.5)
    kpts = torch.tensor([[8 * j + 3.5, 8 * i + 3.5] for i in range(3) for j in range(4)])
    (out,) = sample_descriptors(desc, [kpts], (24, 32))
    expected = desc[0].permute(1, 2, 0).reshape(-1, 8)
    assert torch.allclose(out, expected, atol=1e-5)
    assert sample_descriptors(desc, [torch.zeros(0, 2)], (24, 32))[0].shape == (0, 8)
    (as_tensor,) = sample_descriptors(desc, kpts[None], (24, 32))  # (B, N, 2) also accepted
    assert torch.allclose(as_tensor, expected, atol=1e-5)


def test_bad_arguments_are_named() -> None:
    heat = torch.zeros(1, 16, 16)
    with pytest.raises(ValueError, match="radius"):
        max_pool_nms(heat, -1)
    with pytest.raises(ValueError, match="heatmap"):
        extract_keypoints(heat[0], 0.1, 0, None, 2)
    with pytest.raises(ValueError, match="top_k"):
        extract_keypoints(heat, 0.1, 0, 0, 2)
    with pytest.raises(ValueError, match="logits"):
        logits_to_heatmap(torch.zeros(1, 64, 2, 2))
    with pytest.raises(ValueError, match="image_size"):
        sample_descriptors(torch.zeros(1, 4, 2, 2), [torch.zeros(1, 2)], (20, 16))


def gaussian_heat(
    cx: float, cy: float, h: int = 24, w: int = 32, sigma: float = 1.3
) -> torch.Tensor:
    """``(1, h, w)`` heatmap of one Gaussian peak centred off the pixel grid at (cx, cy)."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))[None].float()


def test_subpixel_refinement_recovers_a_gaussian_peak_off_the_grid() -> None:
    """The log of a Gaussian is a parabola, so the fit through the integer maximum and its 4
    neighbours lands on the true centre; NMS alone is off by the rounding (0.3, 0.2 px)."""
    heat = 0.5 * gaussian_heat(10.3, 7.8)
    ((kp, _),) = extract_keypoints(heat, threshold=0.01, border=2, top_k=None, nms_radius=4)
    assert kp.tolist() == [[10.0, 8.0]]
    (refined,) = refine_subpixel(heat, [kp])
    assert refined.dtype == torch.float32
    torch.testing.assert_close(refined, torch.tensor([[10.3, 7.8]]), atol=1e-4, rtol=0)


def test_subpixel_refinement_keeps_plateaus_and_edges_and_moves_at_most_half_a_pixel() -> None:
    heat = torch.zeros(1, 16, 20)
    heat[0, 5, 3:6] = 0.4  # a flat ridge along x through (4, 5), a peak along y
    heat[0, 4, 4] = heat[0, 6, 4] = 0.1
    heat[0, 0, 10], heat[0, 1, 10] = 0.6, 0.5  # on the top edge: no neighbour above
    heat[0, 12, 9], heat[0, 12, 8], heat[0, 12, 10] = 0.9, 0.9 - 1e-6, 1e-9  # a lopsided peak
    kps = torch.tensor([[4.0, 5.0], [10.0, 0.0], [9.0, 12.0]])
    (refined,) = refine_subpixel(heat, [kps])
    assert refined[0].tolist() == [4.0, 5.0]  # flat in x (kept), symmetric in y (no shift)
    assert refined[1, 1] == 0.0  # the edge axis keeps its pixel
    assert refined[2, 0] == pytest.approx(8.5)  # clamped to half a pixel toward the heavier side
    (empty,) = refine_subpixel(heat, [torch.zeros(0, 2)])
    assert empty.shape == (0, 2)
    with pytest.raises(ValueError, match="one keypoint set per image"):
        refine_subpixel(heat, [kps, kps])
