"""Top-k accuracy and the confusion meter against hand-computed cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pointforge.evaluation.classification import ClassificationMeter, topk_correct

# 4 samples, 4 classes. Ranks of the target: sample 0 → 1st, 1 → 2nd, 2 → 3rd, 3 → 4th.
LOGITS = torch.tensor(
    [
        [5.0, 1.0, 0.0, -1.0],  # target 0: rank 1
        [3.0, 2.0, 9.0, 0.0],  # target 0: rank 2 (after class 2)
        [1.0, 4.0, 0.0, 3.0],  # target 0: rank 3 (after 1, 3)
        [0.0, 1.0, 2.0, 3.0],  # target 0: rank 4
    ]
)
TARGETS = torch.tensor([0, 0, 0, 0])


def test_topk_correct_counts_ranks() -> None:
    assert topk_correct(LOGITS, TARGETS, [1, 2, 3, 4]).tolist() == [1, 2, 3, 4]
    # k beyond the number of classes counts every sample.
    assert topk_correct(LOGITS, TARGETS, [5, 1]).tolist() == [4, 1]


def test_topk_with_other_targets() -> None:
    targets = torch.tensor([1, 2, 1, 3])  # ranks 2, 1, 1, 1
    assert topk_correct(LOGITS, targets, [1, 2]).tolist() == [3, 4]


def test_meter_is_batch_size_independent() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 6, generator=g)
    targets = torch.randint(0, 6, (50,), generator=g)
    whole, parts = ClassificationMeter(6, (1, 5)), ClassificationMeter(6, (1, 5))
    whole.update(logits, targets)
    for chunk in range(0, 50, 7):
        parts.update(logits[chunk : chunk + 7], targets[chunk : chunk + 7])
    a, b = whole.compute(), parts.compute()
    assert a.keys() == {"top1", "top5", "mean_class_acc", "loss"}
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-6)
    expected_top1 = (logits.argmax(1) == targets).float().mean().item()
    assert a["top1"] == pytest.approx(expected_top1)
    assert a["loss"] == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    assert torch.equal(whole.confusion, parts.confusion) and int(whole.confusion.sum()) == 50


def test_confusion_and_balanced_accuracy() -> None:
    meter = ClassificationMeter(3, (1,))
    # Class 0: 3 samples, 2 right; class 1: 1 sample, right; class 2 never occurs.
    logits = torch.tensor([[9.0, 0, 0], [9.0, 0, 0], [0, 0, 9.0], [0, 9.0, 0]])
    meter.update(logits, torch.tensor([0, 0, 0, 1]))
    assert meter.confusion.tolist() == [[2, 0, 1], [0, 1, 0], [0, 0, 0]]
    out = meter.compute()
    assert out["top1"] == pytest.approx(0.75)
    assert out["mean_class_acc"] == pytest.approx((2 / 3 + 1) / 2)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"logits \(N, C\) and targets \(N,\)"):
        topk_correct(LOGITS, TARGETS[:3], [1])
    with pytest.raises(ValueError, match="class ids in"):
        topk_correct(LOGITS, torch.tensor([0, 1, 2, 4]), [1])
    with pytest.raises(ValueError, match="k must be >= 1"):
        topk_correct(LOGITS, TARGETS, [0])
    with pytest.raises(ValueError, match="no samples"):
        ClassificationMeter(3).compute()
    with pytest.raises(ValueError, match=r"expected logits \(N, 3\)"):
        ClassificationMeter(3).update(LOGITS, TARGETS)
