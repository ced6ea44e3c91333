"""Classification metrics: top-k accuracy and a confusion matrix, accumulated over batches.

Definitions (the usual ones, e.g. torchvision's reference ``accuracy``):

- top-k accuracy = fraction of samples whose true class is among the k highest logits. For
  ``k >= num_classes`` every sample counts as correct (1.0). Among tied logits the order is
  ``torch.topk``'s, so exact ties are resolved the same way on every run.
- the confusion matrix counts ``(true class, top-1 prediction)`` pairs; mean per-class accuracy
  (balanced accuracy) is the mean of its row-normalised diagonal over classes that occur.

All counts are integers accumulated per batch, so the result does not depend on batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.ndim != 2 or targets.ndim != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(
            f"targets must be class ids in [0, {logits.shape[1]}), got range "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Number of samples whose target is in the top-k logits, for each ``k`` in ``ks``.

    ``logits``: ``(N, C)``; ``targets``: ``(N,)`` int class ids. Returns int64 ``(len(ks),)``.
    One ``topk`` call for the largest k: ``hit[:, j]`` says whether the target is the
    (j+1)-th prediction, and its cumulative sum over j counts hits within the top j+1.
    """
    _check(logits, targets)
    if any(k < 1 for k in ks):
        raise ValueError(f"k must be >= 1, got {list(ks)}")
    num_classes = logits.shape[1]
    kmax = min(max(ks), num_classes)
    pred = logits.topk(kmax, dim=1).indices  # (N, kmax)
    hit = pred.eq(targets[:, None])  # (N, kmax), at most one True per row
    within = hit.long().cumsum(1).sum(0)  # (kmax,): hits within top-1, top-2, ...
    return torch.stack([within[min(k, num_classes) - 1] for k in ks]).cpu()


class ClassificationMeter:
    """Accumulates top-k hits, a confusion matrix and the summed cross-entropy over batches."""

    def __init__(self, num_classes: int, topk: Sequence[int] = (1, 5)) -> None:
        self.num_classes = num_classes
        self.topk = tuple(topk)
        self.correct = torch.zeros(len(self.topk), dtype=torch.int64)
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.loss_sum = 0.0
        self.count = 0

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: ``logits (N, C)`` with ``C == num_classes``, ``targets (N,)``."""
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"expected logits (N, {self.num_classes}), got {tuple(logits.shape)}")
        logits = logits.detach().float()
        self.correct += topk_correct(logits, targets, self.topk)
        pairs = targets.cpu() * self.num_classes + logits.argmax(1).cpu()
        self.confusion += torch.bincount(pairs, minlength=self.num_classes**2).view_as(
            self.confusion
        )
        ce = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        self.loss_sum += float(ce)
        self.count += int(targets.numel())

    def compute(self) -> dict[str, float]:
        """``top{k}`` accuracies, ``mean_class_acc`` and the mean cross-entropy ``loss``."""
        if self.count == 0:
            raise ValueError("no samples were evaluated (empty evaluation split?)")
        out = {f"top{k}": float(c) / self.count for k, c in zip(self.topk, self.correct)}
        per_class = self.confusion.sum(1)
        present = per_class > 0
        recall = self.confusion.diagonal()[present].double() / per_class[present]
        out["mean_class_acc"] = float(recall.mean())
        out["loss"] = self.loss_sum / self.count
        return out
