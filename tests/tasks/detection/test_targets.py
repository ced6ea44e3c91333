"""Gaussian radius, Gaussian drawing and batch targets on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import box_iou

from pointforge.tasks.detection.targets import (
    TargetParams,
    build_targets,
    draw_gaussian_,
    gaussian_radius,
)


def _iou(a: list[float], b: list[float]) -> float:
    return float(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0])


def test_exact_radius_square_closed_forms() -> None:
    # For an s × s box the three cases have closed forms (see gaussian_radius):
    # A: s(1 - sqrt(2o/(1+o))), B: s(1 - sqrt(o))/2, C: s(1/sqrt(o) - 1)/2; B is the smallest.
    o, s = 0.7, 100.0
    case_b = s * (1 - math.sqrt(o)) / 2
    assert case_b == pytest.approx(8.1670, abs=1e-4)
    r = float(gaussian_radius(torch.tensor(s), torch.tensor(s), o, mode="exact"))
    assert r == pytest.approx(case_b, rel=1e-6)
    # Released-code radius for the same box: min of the three numerators / 2 = 4o·r_C.
    case_c = s * (1 / math.sqrt(o) - 1) / 2
    released = float(gaussian_radius(torch.tensor(s), torch.tensor(s), o))
    assert released == pytest.approx(4 * o * case_c, rel=1e-6)
    assert released == pytest.approx(27.332, abs=1e-3)


@pytest.mark.parametrize(("h", "w"), [(40.0, 40.0), (20.0, 90.0), (7.0, 3.0)])
def test_exact_radius_keeps_min_overlap_in_every_case(h: float, w: float) -> None:
    """Brute force: shifting corners by the radius in each of the three ways gives IoU >= o,
    and the tightest case reaches o exactly."""
    o = 0.7
    r = float(gaussian_radius(torch.tensor(h), torch.tensor(w), o, mode="exact"))
    box = [0.0, 0.0, w, h]
    ious = [
        _iou(box, [r, r, w + r, h + r]),  # A: translated
        _iou(box, [r, r, w - r, h - r]),  # B: shrunk
        _iou(box, [-r, -r, w + r, h + r]),  # C: grown
    ]
    assert min(ious) == pytest.approx(o, abs=1e-5)
    assert all(v >= o - 1e-5 for v in ious)


def test_draw_gaussian_max_and_truncation() -> None:
    hm = torch.zeros(9, 9)
    draw_gaussian_(hm, (4, 4), 2)
    sigma = 5 / 6
    assert hm[4, 4] == 1.0
    assert float(hm[4, 6]) == pytest.approx(math.exp(-4 / (2 * sigma**2)), rel=1e-6)
    assert float(hm[4, 7]) == 0.0  # outside the (2r+1)² window
    # A second, overlapping peak: element-wise max, not sum.
    draw_gaussian_(hm, (5, 4), 1)
    assert hm[4, 5] == 1.0 and hm[4, 4] == 1.0
    # Near the border the window is clipped to the map.
    edge = torch.zeros(4, 4)
    draw_gaussian_(edge, (0, 3), 2)
    assert edge[3, 0] == 1.0 and edge.max() == 1.0


def test_build_targets_hand_case() -> None:
    # Image 64×64 → 16×16 output. Box A: xyxy (10, 12, 50, 40), class 0: centre (30, 26)
    # px = (7.5, 6.5) cells → cell (7, 6), offset (0.5, 0.5), size (10, 7) cells.
    # Box B: (33, 1, 41, 9), class 2: centre (37, 5) px = (9.25, 1.25) → cell (9, 1),
    # offset (0.25, 0.25), size (2, 2) cells.
    boxes = [torch.tensor([[10.0, 12, 50, 40], [33, 1, 41, 9]]), torch.zeros(0, 4)]
    labels = [torch.tensor([0, 2]), torch.zeros(0, dtype=torch.int64)]
    t = build_targets(boxes, labels, 3, (64, 64), TargetParams(max_objects=4))
    assert t["heatmap"].shape == (2, 3, 16, 16)
    assert t["indices"].shape == (2, 4) and t["wh"].shape == (2, 4, 2)
    assert t["indices"][0, :2].tolist() == [6 * 16 + 7, 1 * 16 + 9]
    torch.testing.assert_close(t["wh"][0, :2], torch.tensor([[10.0, 7.0], [2.0, 2.0]]))
    torch.testing.assert_close(t["offset"][0, :2], torch.tensor([[0.5, 0.5], [0.25, 0.25]]))
    assert t["mask"].tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]
    hm = t["heatmap"]
    assert hm[0, 0, 6, 7] == 1.0 and hm[0, 2, 1, 9] == 1.0
    assert (hm == 1).sum() == 2  # exactly the two peaks
    assert hm[0, 1].abs().sum() == 0 and hm[1].abs().sum() == 0  # no object, no heat
    # Box A's radius (released formula, h=7, w=10 cells) → Gaussian value at one cell away.
    r = math.floor(float(gaussian_radius(torch.tensor(7.0), torch.tensor(10.0))))
    sigma = (2 * r + 1) / 6
    assert float(hm[0, 0, 6, 8]) == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-6)
    # Each class map equals a single drawn Gaussian (the vectorised path = the loop path).
    ref = draw_gaussian_(torch.zeros(16, 16), (7, 6), r)
    torch.testing.assert_close(hm[0, 0], ref)


def test_build_targets_clips_and_counts_degenerate_boxes() -> None:
    boxes = [torch.tensor([[-8.0, -8, 8, 8], [70, 10, 90, 20]])]  # 2nd is outside the image
    t = build_targets(boxes, [torch.tensor([1, 0])], 2, (64, 64))
    assert t["ignored"].tolist() == [1]
    assert t["mask"][0].sum() == 1
    # Clipped to (0, 0, 8, 8): centre (1, 1) cells, size (2, 2).
    assert t["indices"][0, 0] == 1 * 16 + 1
    torch.testing.assert_close(t["wh"][0, 0], torch.tensor([2.0, 2.0]))


def test_build_targets_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="image 0 of the batch, box 1: label 5"):
        build_targets(
            [torch.tensor([[0.0, 0, 8, 8], [0, 0, 4, 4]])], [torch.tensor([0, 5])], 3, (32, 32)
        )
    with pytest.raises(ValueError, match="x2 < x1"):
        build_targets([torch.tensor([[9.0, 0, 8, 8]])], [torch.tensor([0])], 3, (32, 32))
    with pytest.raises(ValueError, match="more than max_objects=1"):
        build_targets(
            [torch.tensor([[0.0, 0, 8, 8], [8, 8, 16, 16]])],
            [torch.tensor([0, 0])],
            1,
            (32, 32),
            TargetParams(max_objects=1),
        )


def test_vectorised_heatmap_equals_drawing_one_by_one() -> None:
    """Random boxes (overlapping, at borders, shared classes): the batched scatter-max equals
    drawing each Gaussian in turn with draw_gaussian_."""
    g = torch.Generator().manual_seed(0)
    boxes, labels = [], []
    for n in (7, 0, 12):
        xy = torch.rand(n, 2, generator=g) * 120 - 10
        wh = torch.rand(n, 2, generator=g) * 60 + 2
        boxes.append(torch.cat([xy, xy + wh], 1))
        labels.append(torch.randint(0, 3, (n,), generator=g))
    for mode in ("released", "exact"):
        p = TargetParams(radius_mode=mode)
        t = build_targets(boxes, labels, 3, (96, 128), p)
        ref = torch.zeros(3, 3, 24, 32)
        for i, (b, lab) in enumerate(zip(boxes, labels)):
            b = torch.minimum(b.clamp(min=0), torch.tensor([128.0, 96, 128, 96])) / 4
            for box, c in zip(b, lab):
                w, h = float(box[2] - box[0]), float(box[3] - box[1])
                if w <= 0 or h <= 0:
                    continue
                cx = min(int((box[0] + box[2]) / 2), 31)
                cy = min(int((box[1] + box[3]) / 2), 23)
                r = int(gaussian_radius(torch.tensor(h), torch.tensor(w), 0.7, mode))
                draw_gaussian_(ref[i, c], (cx, cy), max(r, 0))
        torch.testing.assert_close(t["heatmap"], ref)
        assert int(t["mask"].sum() + t["ignored"].sum()) == 19
