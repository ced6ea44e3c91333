"""The ``tune_report`` hook: each periodic evaluation of a trial goes to the sweep's reporter.

Why a hook from :data:`pointforge.registry.HOOKS` rather than a Task method: the engine already
builds hooks named in ``train.hooks`` for any task, and they run after the evaluation hook of the
same iteration (``docs/architecture.md``), so the metrics of every task reach ASHA without any
task knowing about Ray. The reporter (``ray.tune.report`` inside a Ray trial, any callable in
tests) is set for the duration of a trial by :func:`reporting_to`; a context variable keeps it
task- and config-independent (a config holds only the hook's name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from pointforge.engine.hooks import HookBase
from pointforge.registry import HOOKS

if TYPE_CHECKING:
    from pointforge.engine.trainer import Trainer

HOOK_NAME = "tune_report"
# Reported beside the task's metrics: the training iteration of the evaluation. ASHA measures
# time in it (not in Ray's count of reports), so a trial restarted from its checkpoint after a
# failure stays on the same rungs.
ITERATION = "iteration"

Reporter = Callable[[dict[str, float]], None]
_reporter: ContextVar[Reporter | None] = ContextVar("pointforge_tune_reporter", default=None)


@contextmanager
def reporting_to(report: Reporter) -> Iterator[None]:
    """Send the metrics of ``tune_report`` hooks built inside the ``with`` body to ``report``."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


class TuneReport(HookBase):
    """After each evaluation (periodic and final) call ``report({metric: value, ...,
    "iteration": it})`` with the evaluation's metrics (without their ``eval/`` prefix)."""

    def __init__(self, report: Reporter) -> None:
        self.report = report
        self.reported = 0

    def _send(self) -> None:
        t = self.trainer
        metrics = {
            k.removeprefix("eval/"): float(v)
            for k, (v, it) in t.storage.latest().items()
            if k.startswith("eval/") and it == t.iter
        }
        if metrics:
            self.report({**metrics, ITERATION: float(t.iter)})
            self.reported += 1

    def after_step(self) -> None:
        self._send()

    def after_train(self) -> None:
        self._send()  # the final evaluation (EvalHook runs it in its own after_train)


@HOOKS.register(HOOK_NAME)
def tune_report(trainer: Trainer) -> TuneReport:
    """``train.hooks: [tune_report]``: only inside a trial of ``pointforge tune``."""
    report = _reporter.get()
    if report is None:
        raise RuntimeError(
            f"train.hooks '{HOOK_NAME}' reports to a 'pointforge tune' sweep and only runs "
            "inside one of its trials; remove it from train.hooks"
        )
    return TuneReport(report)
