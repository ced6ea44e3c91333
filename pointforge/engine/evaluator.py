"""The evaluator protocol: ``process`` on every rank → ``gather`` to rank 0 → ``evaluate`` once.

Why: most metrics are not means of per-rank means. COCO AP, re-ID mAP, a median or any
ranking metric needs every prediction in one place; averaging per-rank values (what a naive
DDP evaluation does) is silently wrong. As in detectron2, each rank runs the model on its
shard of the evaluation set and stores what the metric needs (``process``); the stored items
are gathered to rank 0, which computes the metric once on the whole set (``evaluate``); the
result is broadcast so every rank returns the same dict. Only a metric that *is* a per-sample
mean gives the same value either way. See ``docs/evaluation.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from pointforge.engine import comm


class Evaluator:
    """Base class: ``process`` appends to :attr:`predictions`; :meth:`evaluate` computes from
    the full list on rank 0. The result must not depend on the order of the list (ranks hold
    interleaved shards); store a sample index with each item if order matters."""

    def __init__(self) -> None:
        self.predictions: list[Any] = []

    def reset(self) -> None:
        self.predictions = []

    def process(self, inputs: dict[str, Any], outputs: Any) -> None:
        """Store, on the CPU, what the metric needs from one batch and its model outputs."""
        raise NotImplementedError

    def gather(self) -> bool:
        """Concatenate every rank's :attr:`predictions` on rank 0 (others are emptied).
        Returns whether this process should call :meth:`evaluate`."""
        if comm.get_world_size() > 1:
            parts = comm.all_gather(self.predictions)
            self.predictions = [p for part in parts for p in part] if comm.is_main_process() else []
        return comm.is_main_process()

    def evaluate(self) -> dict[str, float]:
        """A flat dict of metrics computed from all predictions."""
        raise NotImplementedError


def inference_on_dataset(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    predict: Callable[[nn.Module, dict[str, Any]], Any],
    evaluator: Evaluator,
    progress: bool = False,
    description: str = "eval",
) -> dict[str, float]:
    """Run ``predict(model, batch)`` over this rank's ``batches``, feed the evaluator, gather
    and evaluate on rank 0, and return the broadcast result on every rank.

    The model is put in eval mode for the pass and restored afterwards.
    """
    evaluator.reset()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            show = progress and comm.is_main_process()
            for batch in tqdm(batches, desc=description, leave=False, disable=not show or None):
                evaluator.process(batch, predict(model, batch))
    finally:
        model.train(was_training)
    results = evaluator.evaluate() if evaluator.gather() else None
    results = comm.broadcast(results)
    assert results is not None
    return {k: float(v) for k, v in results.items()}
