"""PreciseBN: BatchNorm running statistics recomputed as true averages over N batches.

Why: during training, ``running_mean``/``running_var`` are an exponential average (momentum 0.1)
of statistics computed under weights that kept changing, so they lag behind the final weights
and are dominated by the last few batches. Evaluating with statistics averaged over many
batches under the *current* weights is more accurate (Wu & Johnson 2021, "Rethinking Batch in
BatchNorm", §3; detectron2's PreciseBN hook).

How: reset the statistics and set ``momentum=None``, which makes PyTorch's BatchNorm keep a
cumulative (equal-weight) average of the per-batch mean and unbiased variance; then forward
``num_iter`` batches in train mode without gradients. With equal batch sizes the resulting
``running_mean`` is exactly the mean of the BN input over all those batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _active_batchnorms(model: nn.Module) -> list[_BatchNorm]:
    """BatchNorms that would update running stats in train mode (frozen ones are skipped)."""
    was_training = model.training
    model.train()
    try:
        return [
            m
            for m in model.modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats and m.training
        ]
    finally:
        model.train(was_training)


@torch.no_grad()
def recompute_bn_stats(
    model: nn.Module,
    forward: Callable[[Any], Any],
    batches: Iterable[Any],
    num_iter: int,
) -> int:
    """Recompute the running stats of ``model``'s BatchNorms from ``num_iter`` batches.

    ``forward(batch)`` runs the model on one batch (for a Task: ``task.training_step``), so
    this stays task-agnostic. Returns the number of batches used (0 when the model has no
    trainable BatchNorm, in which case nothing is run). Raises ``ValueError`` when ``batches``
    runs out before ``num_iter``, since the statistics would then silently cover fewer batches.
    """
    bns = _active_batchnorms(model)
    if not bns:
        return 0
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average = plain mean over batches
    model.train()
    used = 0
    try:
        for batch in batches:
            if used == num_iter:
                break
            forward(batch)
            used += 1
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        model.train(was_training)
    if used < num_iter:
        raise ValueError(f"PreciseBN needs {num_iter} batches but the data gave only {used}")
    return used
