"""Schedules that follow the run's length: fractional LR milestones and warm-up, resolved once.

Why: a recipe tuned for one budget (CenterNet's COCO schedule drops the LR at 332k and 443k of
517k iterations) silently becomes a constant LR when a user runs 600 iterations on their own
data. A recipe can therefore give ``solver.steps`` and ``solver.warmup_iters`` as fractions of
``solver.max_iter`` (``[0.64, 0.86]``, ``0.08``): a number written with a decimal point in
(0, 1) is a fraction, an integer is an absolute iteration. Fractions are turned into iterations
here, at validation time, so the frozen config (and ``config.yaml``) holds the iterations the
run really uses. A milestone or a warm-up that the run never reaches is a warning naming the
keys (``docs/config.md``, "Budget and batch").
"""

from __future__ import annotations

import dataclasses
import logging

from pointforge.config.schema import SolverConfig
from pointforge.config.validate import need

log = logging.getLogger("pointforge")


def _iterations(value: int | float, max_iter: int, key: str) -> int:
    """One schedule entry as an iteration: ints as given, floats as fractions of ``max_iter``."""
    if isinstance(value, bool):  # the validator never lets one through; be explicit anyway
        need(False, key, f"must be a number, got {value!r}")
    if isinstance(value, int):
        need(value >= 0, key, f"must be >= 0, got {value}")
        return value
    need(
        0.0 <= value < 1.0,
        key,
        f"is {value}: a number with a decimal point is a fraction of solver.max_iter and must "
        "be in [0, 1); write an absolute iteration as an integer",
    )
    return round(value * max_iter)


def resolve_budget(solver: SolverConfig) -> SolverConfig:
    """``solver`` with fractional ``steps`` / ``warmup_iters`` as iterations, warning about
    milestones or a warm-up at or beyond ``max_iter``."""
    n = solver.max_iter
    steps = tuple(_iterations(v, n, f"solver.steps[{i}]") for i, v in enumerate(solver.steps))
    need(
        list(steps) == sorted(steps),
        "solver.steps",
        f"must be increasing, got {list(solver.steps)}",
    )
    warmup = _iterations(solver.warmup_iters, n, "solver.warmup_iters")
    if steps != tuple(solver.steps) or warmup != solver.warmup_iters:
        log.info(
            "solver schedule for max_iter=%d: steps %s -> %s, warmup_iters %s -> %d",
            n, list(solver.steps), list(steps), solver.warmup_iters, warmup,
        )  # fmt: skip
    late = [s for s in steps if s >= n]
    if late and solver.lr_schedule == "multistep":
        log.warning(
            "solver.steps %s are at or beyond solver.max_iter=%d: those LR drops never happen; "
            "give them as fractions of max_iter (e.g. solver.steps=[0.64,0.86])",
            late, n,
        )  # fmt: skip
    if warmup >= n:
        log.warning(
            "solver.warmup_iters=%d is at or beyond solver.max_iter=%d: the whole run stays in "
            "warm-up below the full LR; give it as a fraction of max_iter "
            "(e.g. solver.warmup_iters=0.05)",
            warmup, n,
        )  # fmt: skip
    return dataclasses.replace(solver, steps=steps, warmup_iters=warmup)
