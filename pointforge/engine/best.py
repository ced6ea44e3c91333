"""The best evaluation of a run: ``checkpoints/best.pth`` and early stopping on it.

Why in the engine: every task's evaluator returns a flat dict of floats, so "keep the weights
of the best ``bbox/AP`` (or ``reid/mAP``, or a plugin's metric) and stop when it no longer
improves" is the same for every family, as in detectron2's ``BestCheckpointer`` and
Lightning's ``ModelCheckpoint(monitor=...)`` / ``EarlyStopping`` (``docs/config.md``, "Best
checkpoint and early stopping").

The tracker's state (best value, its iteration, evaluations without improvement, whether the
run stopped) is part of every training checkpoint, so a killed and resumed run counts exactly
as an uninterrupted one. ``best.pth`` holds the evaluated weights (the EMA when
``train.ema.enabled``) under ``model`` with the run's config, like ``final.pth`` minus the
optimiser: ``pointforge eval`` and ``load_predictor`` read it as any checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pointforge.engine import comm
from pointforge.engine.checkpoint import FORMAT_VERSION, atomic_save
from pointforge.registry import did_you_mean

log = logging.getLogger("pointforge")

BEST_NAME = "best.pth"


class BestMetricError(KeyError):
    """``train.best_metric`` names a metric the task's evaluation does not return."""

    def __str__(self) -> str:  # KeyError quotes its message; show it as written
        return str(self.args[0])


class BestTracker:
    """Follows ``metric`` over a run's evaluations (``mode`` ``max`` or ``min``).

    ``update`` is called with each evaluation's results: an improvement writes ``best.pth``
    (rank 0) and resets the count; otherwise the count grows, and with ``patience > 0`` it
    returns True once ``patience`` evaluations in a row did not improve.
    """

    def __init__(self, metric: str, mode: str, patience: int, directory: str | Path) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"config key 'train.best_mode' must be max or min, got {mode!r}")
        self.metric = metric
        self.mode = mode
        self.patience = patience
        self.path = Path(directory) / BEST_NAME
        self.value: float | None = None
        self.iteration: int | None = None
        self.bad_evals = 0
        self.stopped_at: int | None = None

    def improves(self, value: float) -> bool:
        """Strictly better than the best so far (a NaN never is)."""
        if math.isnan(value):
            return False
        if self.value is None:
            return True
        return value > self.value if self.mode == "max" else value < self.value

    def update(
        self,
        results: dict[str, float],
        iteration: int,
        payload: Callable[[], dict[str, Any]],
    ) -> bool:
        """Record one evaluation at ``iteration``; ``payload()`` gives what ``best.pth`` holds
        (called only on an improvement). Returns True when the run should stop."""
        if self.metric not in results:
            known = sorted(results)
            raise BestMetricError(
                f"config key 'train.best_metric' is {self.metric!r}, which the evaluation does "
                f"not return.{did_you_mean(self.metric, known)} Its metrics: {', '.join(known)}"
            )
        value = float(results[self.metric])
        if self.improves(value):
            previous = self.value
            self.value, self.iteration, self.bad_evals = value, iteration, 0
            if comm.is_main_process():
                state = {
                    **payload(),
                    "iteration": iteration,
                    "format_version": FORMAT_VERSION,
                    "best": self.summary(),
                }
                atomic_save(state, self.path)
                log.info(
                    "new best %s = %.4f at iteration %d (was %s): %s",
                    self.metric, value, iteration,
                    "none" if previous is None else f"{previous:.4f}", self.path,
                )  # fmt: skip
            return False
        self.bad_evals += 1
        if self.patience > 0 and self.bad_evals >= self.patience:
            self.stopped_at = iteration
            if comm.is_main_process():
                log.warning(
                    "early stop at iteration %d: %s did not improve on %.4f (iteration %s) in "
                    "%d evaluations (train.patience=%d)",
                    iteration, self.metric, self.value, self.iteration,
                    self.bad_evals, self.patience,
                )  # fmt: skip
            return True
        return False

    def stop_reason(self) -> str | None:
        """Why the run stopped early, or None."""
        if self.stopped_at is None:
            return None
        return (
            f"early stop at iteration {self.stopped_at}: {self.metric} did not improve in "
            f"{self.patience} evaluations (train.patience={self.patience}); best "
            f"{self.value} at iteration {self.iteration}"
        )

    def summary(self) -> dict[str, Any]:
        """What ``eval/metrics.json`` and ``best.pth`` say about the best evaluation."""
        return {
            "metric": self.metric,
            "mode": self.mode,
            "value": self.value,
            "iteration": self.iteration,
            "evaluations_without_improvement": self.bad_evals,
            "stopped_early_at": self.stopped_at,
            "path": f"checkpoints/{BEST_NAME}" if self.value is not None else None,
        }

    # -- checkpoint state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values (``weights_only``-loadable); the metric and mode, to refuse a resume
        that would compare another metric against this run's best."""
        return {
            "metric": self.metric,
            "mode": self.mode,
            "value": self.value,
            "iteration": self.iteration,
            "bad_evals": self.bad_evals,
            "stopped_at": self.stopped_at,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state.get("metric"), state.get("mode")) != (self.metric, self.mode):
            # Another metric (or direction) than the run started with: its best value means
            # nothing now, so start counting afresh rather than compare apples with pears.
            log.warning(
                "train.best_metric/best_mode changed on resume (%s/%s -> %s/%s): the best "
                "checkpoint and the patience count start afresh",
                state.get("metric"), state.get("mode"), self.metric, self.mode,
            )  # fmt: skip
            return
        self.value = state["value"]
        self.iteration = state["iteration"]
        self.bad_evals = int(state["bad_evals"])
        self.stopped_at = state["stopped_at"]


def best_payload(model: torch.nn.Module, config: dict[str, Any]) -> dict[str, Any]:
    """``best.pth``'s content besides the bookkeeping: the evaluated weights and the config."""
    return {"model": model.state_dict(), "config": config}
