"""IoU / GIoU / DIoU / CIoU against a scalar reference written from the definitions, hand
values, torchvision agreement on ordinary boxes, and the degenerate-box conventions."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.ops as tv

from pointforge import ops

KINDS = ("iou", "giou", "diou", "ciou")
PAIRWISE = {
    "iou": ops.box_iou,
    "giou": ops.generalized_box_iou,
    "diou": ops.distance_box_iou,
    "ciou": ops.complete_box_iou,
}
ALIGNED = {
    "iou": ops.aligned_box_iou,
    "giou": ops.aligned_generalized_box_iou,
    "diou": ops.aligned_distance_box_iou,
    "ciou": ops.aligned_complete_box_iou,
}
LOSSES = {
    "iou": ops.box_iou_loss,
    "giou": ops.generalized_box_iou_loss,
    "diou": ops.distance_box_iou_loss,
    "ciou": ops.complete_box_iou_loss,
}


def reference(a: list[float], b: list[float]) -> dict[str, float]:
    """All four measures of two boxes, plain floats, with the documented degenerate cases."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    aw, ah, bw, bh = ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = aw * ah + bw * bh - inter
    iou = inter / union if union > 0 else 0.0
    cw = max(ax2, bx2) - min(ax1, bx1)
    ch = max(ay2, by2) - min(ay1, by1)
    giou = iou - ((cw * ch - union) / (cw * ch) if cw * ch > 0 else 0.0)
    rho2 = ((ax1 + ax2) / 2 - (bx1 + bx2) / 2) ** 2 + ((ay1 + ay2) / 2 - (by1 + by2) / 2) ** 2
    diou = iou - (rho2 / (cw**2 + ch**2) if cw**2 + ch**2 > 0 else 0.0)
    if (aw == 0 and ah == 0) or (bw == 0 and bh == 0):
        v = 0.0
    else:
        v = 4 / math.pi**2 * (math.atan2(bw, bh) - math.atan2(aw, ah)) ** 2
    alpha = v / (1 - iou + v) if 1 - iou + v > 0 else 0.0
    return {"iou": iou, "giou": giou, "diou": diou, "ciou": diou - alpha * v}


def random_boxes(n: int, seed: int, degenerate: bool = True) -> torch.Tensor:
    """Boxes in a 40×40 field, float64; with ``degenerate`` some have zero width, zero height,
    or both, and a few repeat an earlier box exactly."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 30
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 15 + 0.5
    if degenerate:
        wh[::5, 0] = 0
        wh[::7, 1] = 0
    boxes = torch.cat([xy, xy + wh], dim=1)
    if degenerate:
        boxes[3::6] = boxes[0]
    return boxes


def test_pairwise_and_aligned_match_reference() -> None:
    a, b = random_boxes(13, seed=0), random_boxes(11, seed=1)
    for kind in KINDS:
        got = PAIRWISE[kind](a, b)
        want = torch.tensor(
            [[reference(x, y)[kind] for y in b.tolist()] for x in a.tolist()], dtype=a.dtype
        )
        assert got.shape == (13, 11) and got.dtype == a.dtype
        torch.testing.assert_close(got, want, atol=1e-9, rtol=0, msg=kind)
        got = ALIGNED[kind](a[:11], b)
        pairs = zip(a[:11].tolist(), b.tolist())
        want = torch.tensor([reference(x, y)[kind] for x, y in pairs], dtype=a.dtype)
        torch.testing.assert_close(got, want, atol=1e-9, rtol=0, msg=kind)
        # Loss = 1 - measure (DIoU's comes from torchvision, with eps = 1e-7).
        loss = LOSSES[kind](a[:11], b)
        torch.testing.assert_close(loss, 1 - want, atol=1e-6, rtol=0, msg=kind)


def test_hand_computed_values() -> None:
    # A = [0,2]², B = [1,3]²: inter 1, union 7, enclosing [0,3]² (area 9, diagonal² 18),
    # centres (1,1), (2,2) so rho² = 2; same aspect ratio so v = 0.
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    hand = {"iou": 1 / 7, "giou": 1 / 7 - 2 / 9, "diou": 1 / 7 - 2 / 18, "ciou": 1 / 7 - 1 / 9}
    for kind, value in hand.items():
        assert PAIRWISE[kind](a, b).item() == pytest.approx(value, abs=1e-6), kind
    # A = [0,2]², B = [0,4]×[0,2]: IoU 4/8; centres 1 apart, enclosing diagonal² 20:
    # DIoU = 0.45; v = 4/π² (atan 2 - π/4)² = 0.0419557, alpha = v / (0.5 + v) = 0.0774154,
    # CIoU = 0.45 - alpha·v = 0.4467520.
    b = torch.tensor([[0.0, 0.0, 4.0, 2.0]])
    assert ops.complete_box_iou(a, b).item() == pytest.approx(0.4467520, abs=1e-6)
    assert ops.distance_box_iou(a, b).item() == pytest.approx(0.45, abs=1e-6)
    # Disjoint unit squares 1 apart: enclosing 3×1 (area 3, union 2), rho² = 4, diagonal² 10.
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    assert ops.box_iou(a, b).item() == 0.0
    assert ops.generalized_box_iou(a, b).item() == pytest.approx(-1 / 3, abs=1e-6)
    assert ops.distance_box_iou(a, b).item() == pytest.approx(-0.4, abs=1e-6)
    assert ops.generalized_box_iou_loss(a, b).item() == pytest.approx(4 / 3, abs=1e-6)


def test_agrees_with_torchvision_on_positive_area_boxes() -> None:
    a = random_boxes(20, seed=2, degenerate=False).float()
    b = random_boxes(17, seed=3, degenerate=False).float()
    torch.testing.assert_close(ops.box_iou(a, b), tv.box_iou(a, b))
    torch.testing.assert_close(ops.generalized_box_iou(a, b), tv.generalized_box_iou(a, b))
    for ours, theirs in (
        (ops.distance_box_iou, tv.distance_box_iou),
        (ops.complete_box_iou, tv.complete_box_iou),
    ):
        torch.testing.assert_close(ours(a, b), theirs(a, b), atol=1e-5, rtol=0)
    for ours, theirs in (
        (ops.generalized_box_iou_loss, tv.generalized_box_iou_loss),
        (ops.complete_box_iou_loss, tv.complete_box_iou_loss),
    ):
        torch.testing.assert_close(ours(a[:17], b), theirs(a[:17], b), atol=1e-5, rtol=0)


def test_degenerate_boxes_are_finite_with_finite_gradients() -> None:
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    line = torch.tensor([[0.0, 2.0, 4.0, 2.0]])  # zero height
    for kind in KINDS:
        # Identical zero-area boxes: no area to overlap, so 0 (documented), loss 1.
        assert PAIRWISE[kind](point, point).item() == 0.0, kind
        assert ALIGNED[kind](line, line).item() == 0.0, kind
    assert ops.box_iou(point, torch.tensor([[0.0, 0.0, 2.0, 2.0]])).item() == 0.0
    # Distinct points: enclosing box has area 1 -> GIoU -1; DIoU -rho²/c² = -1 (the centres are
    # the enclosing box's corners).
    other = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    assert ops.generalized_box_iou(point, other).item() == pytest.approx(-1.0)
    assert ops.distance_box_iou(point, other).item() == pytest.approx(-1.0)
    pred = torch.tensor(
        [[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 4.0, 2.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 3.0]],
        requires_grad=True,
    )
    target = torch.tensor(
        [[1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 2.0], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]]
    )
    for kind in KINDS:
        pred.grad = None
        loss = LOSSES[kind](pred, target)
        assert torch.isfinite(loss).all(), kind
        assert loss[0].item() == pytest.approx(1.0), kind
        loss.sum().backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().max() < 10, kind


def test_empty_single_and_batched_shapes() -> None:
    none = torch.zeros(0, 4)
    some = random_boxes(5, seed=4).float()
    for kind in KINDS:
        assert PAIRWISE[kind](none, some).shape == (0, 5)
        assert PAIRWISE[kind](some, none).shape == (5, 0)
        assert ALIGNED[kind](none, none).shape == (0,)
        x = torch.zeros(0, 4, requires_grad=True)
        for reduction, shape in (("none", (0,)), ("mean", ()), ("sum", ())):
            out = LOSSES[kind](x, none, reduction=reduction)
            assert out.shape == shape and torch.isfinite(out).all()
        LOSSES[kind](x, none, reduction="mean").backward()
        one = torch.tensor([[1.0, 2.0, 4.0, 7.0]])
        assert PAIRWISE[kind](one, one).item() == pytest.approx(1.0)
    batched = ops.distance_box_iou(some[None].expand(2, 5, 4), some[None, :3].expand(2, 3, 4))
    assert batched.shape == (2, 5, 3)
    torch.testing.assert_close(batched[1], ops.distance_box_iou(some, some[:3]))


def test_reductions_integers_and_errors() -> None:
    a, b = random_boxes(9, seed=5).float(), random_boxes(9, seed=6).float()
    for kind in KINDS:
        per_box = LOSSES[kind](a, b)
        torch.testing.assert_close(LOSSES[kind](a, b, reduction="mean"), per_box.mean())
        torch.testing.assert_close(LOSSES[kind](a, b, reduction="sum"), per_box.sum())
        with pytest.raises(ValueError, match="reduction"):
            LOSSES[kind](a, b, reduction="avg")
    ints = torch.tensor([[0, 0, 2, 2]])
    assert ops.box_iou(ints, ints).dtype == torch.float32
    with pytest.raises(ValueError, match="boxes1"):
        ops.box_iou(torch.zeros(3, 5), a)
    # Loss broadcasting: one target against many predictions.
    torch.testing.assert_close(
        ops.distance_box_iou_loss(a, b[:1]), ops.distance_box_iou_loss(a, b[:1].expand(9, 4))
    )
