"""CenterNet losses against naive references; zero-object batch; float32 under autocast."""

from __future__ import annotations

import math

import pytest
import torch

from pointforge.tasks.detection.losses import (
    CenterNetLossParams,
    centernet_losses,
    focal_loss,
)
from pointforge.tasks.detection.targets import build_targets


def _naive_focal(logits: torch.Tensor, target: torch.Tensor, a: float = 2, b: float = 4) -> float:
    """Paper Eq. 1 written element by element in float64."""
    total, n = 0.0, 0
    for x, y in zip(logits.double().flatten().tolist(), target.double().flatten().tolist()):
        p = 1 / (1 + math.exp(-x))
        if y == 1:
            total += (1 - p) ** a * math.log(p)
            n += 1
        else:
            total += (1 - y) ** b * p**a * math.log(1 - p)
    return -total / max(n, 1)


def _targets() -> dict[str, torch.Tensor]:
    boxes = [torch.tensor([[4.0, 4, 28, 20], [16, 10, 30, 30]]), torch.tensor([[0.0, 0, 12, 12]])]
    labels = [torch.tensor([0, 1]), torch.tensor([1])]
    return build_targets(boxes, labels, 2, (32, 32))


def test_focal_loss_matches_naive() -> None:
    torch.manual_seed(0)
    t = _targets()
    logits = torch.randn(2, 2, 8, 8) * 2
    assert float(focal_loss(logits, t["heatmap"])) == pytest.approx(
        _naive_focal(logits, t["heatmap"]), rel=1e-5
    )


def test_focal_loss_without_objects() -> None:
    logits = torch.randn(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    got = float(focal_loss(logits, target))
    assert got == pytest.approx(_naive_focal(logits, target), rel=1e-5)
    assert got > 0
    # Perfect negatives give ~0.
    assert float(focal_loss(torch.full((1, 3, 4, 4), -30.0), target)) < 1e-20


def test_regression_losses_read_object_cells_only() -> None:
    t = _targets()
    out = {
        "heatmap": torch.zeros(2, 2, 8, 8),
        "wh": torch.full((2, 2, 8, 8), 100.0),  # wrong everywhere...
        "offset": torch.zeros(2, 2, 8, 8),
    }
    for i in range(2):  # ...except at the objects' cells
        for j in range(int(t["mask"][i].sum())):
            cell = int(t["indices"][i, j])
            out["wh"][i, :, cell // 8, cell % 8] = t["wh"][i, j] + torch.tensor([1.0, -3.0])
            out["offset"][i, :, cell // 8, cell % 8] = t["offset"][i, j]
    losses = centernet_losses(out, t)
    assert set(losses) == {"loss_hm", "loss_wh", "loss_off"}
    # |err| = 1 and 3 per object → mean 2 over coordinates, weight 0.1.
    assert float(losses["loss_wh"]) == pytest.approx(0.1 * 2.0, rel=1e-6)
    assert float(losses["loss_off"]) == pytest.approx(0.0, abs=1e-7)
    weighted = centernet_losses(out, t, CenterNetLossParams(wh_weight=1.0))
    assert float(weighted["loss_wh"]) == pytest.approx(2.0, rel=1e-6)


def test_losses_float32_under_autocast_and_no_objects() -> None:
    t = build_targets([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.int64)], 2, (32, 32))
    out = {
        "heatmap": torch.randn(1, 2, 8, 8, dtype=torch.bfloat16, requires_grad=True),
        "wh": torch.randn(1, 2, 8, 8, dtype=torch.bfloat16, requires_grad=True),
        "offset": torch.randn(1, 2, 8, 8, dtype=torch.bfloat16, requires_grad=True),
    }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = centernet_losses(out, t)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    assert float(losses["loss_wh"].detach()) == 0.0 and float(losses["loss_hm"].detach()) > 0
    sum(losses.values()).backward()
    assert out["heatmap"].grad is not None and out["heatmap"].grad.abs().sum() > 0
