from __future__ import annotations

import math

import pytest
import torch

from pointforge.tasks.reid.losses import batch_hard_triplet, cross_entropy_label_smooth


def test_label_smoothing_matches_the_formula() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    eps, n = 0.1, 5
    expected = 0.0
    for row, y in zip(logits, targets):
        logp = torch.log_softmax(row.double(), 0)
        q = torch.full((n,), eps / n, dtype=torch.float64)
        q[y] += 1 - eps
        expected += float(-(q * logp).sum()) / len(targets)
    loss = cross_entropy_label_smooth(logits.bfloat16(), targets)
    assert loss.dtype == torch.float32
    assert math.isclose(float(cross_entropy_label_smooth(logits, targets)), expected, rel_tol=1e-5)


def naive_triplet(x: torch.Tensor, pids: list[int], margin: float, soft: bool) -> float:
    losses = []
    for a in range(len(pids)):
        pos = [
            float((x[a] - x[p]).norm()) for p in range(len(pids)) if p != a and pids[p] == pids[a]
        ]
        neg = [float((x[a] - x[n]).norm()) for n in range(len(pids)) if pids[n] != pids[a]]
        if not pos or not neg:
            continue
        diff = max(pos) - min(neg)
        losses.append(math.log1p(math.exp(diff)) if soft else max(0.0, diff + margin))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_triplet_matches_loops(soft: bool) -> None:
    torch.manual_seed(1)
    x = torch.randn(8, 4, dtype=torch.float64)
    pids = [0, 0, 1, 1, 2, 2, 2, 3]  # identity 3 has no positive: left out
    x32 = x.float().requires_grad_()
    loss = batch_hard_triplet(x32, torch.tensor(pids), margin=0.3, soft_margin=soft)
    assert math.isclose(float(loss.detach()), naive_triplet(x, pids, 0.3, soft), rel_tol=1e-5)
    loss.backward()
    assert x32.grad is not None and torch.isfinite(x32.grad).all()


def test_triplet_zero_when_separated_and_without_positives() -> None:
    x = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 0.0], [5.0, 0.1]])
    assert float(batch_hard_triplet(x, torch.tensor([0, 0, 1, 1]))) == 0.0
    lone = batch_hard_triplet(x.requires_grad_(), torch.tensor([0, 1, 2, 3]))
    assert float(lone.detach()) == 0.0
    lone.backward()
