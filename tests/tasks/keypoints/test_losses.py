from __future__ import annotations

import math

import torch

from pointforge.tasks.keypoints.losses import detector_loss


def test_perfect_and_uniform_logits() -> None:
    labels = torch.randint(0, 65, (2, 3, 4))
    perfect = torch.nn.functional.one_hot(labels, 65).permute(0, 3, 1, 2).float() * 50
    assert detector_loss(perfect, labels) < 1e-6
    uniform = torch.zeros(2, 65, 3, 4)
    assert math.isclose(float(detector_loss(uniform, labels)), math.log(65), rel_tol=1e-6)


def test_invalid_cells_are_ignored_and_all_invalid_is_zero() -> None:
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    logits = torch.zeros(1, 65, 2, 2)
    logits[0, 0, 0, 0] = 30.0  # only cell (0, 0) is right
    valid = torch.tensor([[[True, False], [False, False]]])
    assert detector_loss(logits, labels, valid) < 1e-6
    logits.requires_grad_(True)
    loss = detector_loss(logits, labels, torch.zeros(1, 2, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(logits.grad).all()


def test_bf16_logits_give_float32_loss() -> None:
    labels = torch.randint(0, 65, (1, 2, 2))
    loss = detector_loss(torch.randn(1, 65, 2, 2).bfloat16(), labels)
    assert loss.dtype == torch.float32
