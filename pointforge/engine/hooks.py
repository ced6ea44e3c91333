"""Training hooks: each has one job and one place in the loop.

Order of a step (see :class:`~pointforge.engine.trainer.Trainer`)::

    before_step → data → task.training_step → backward → optimizer.step → after_step

``after_step`` runs hooks in registration order: timer, LR schedule, PreciseBN, eval (with the
best checkpoint and early stopping), checkpoint, writers. So a checkpoint at iteration N holds
the scheduler already stepped N times, the BN statistics PreciseBN recomputed at N and the
best-metric and patience state after N's evaluation (exact resume: a resumed run never
re-evaluates N, so that evaluation's outcome must already be in the checkpoint), the evaluation
sees those statistics, and writers see the eval metrics of the same iteration. The EMA of the
weights is updated by the Trainer itself right after each optimiser step, so every hook sees it
current.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pointforge.data.loader import move_to_device
from pointforge.engine import comm
from pointforge.engine.checkpoint import (
    atomic_write_text,
    capture_rng_state,
    restore_rng_state,
)
from pointforge.engine.precise_bn import recompute_bn_stats

if TYPE_CHECKING:
    from pointforge.engine.best import BestTracker
    from pointforge.engine.trainer import Trainer


class HookBase:
    """No-op base. ``self.trainer`` is set when the hook is registered."""

    trainer: Trainer

    def before_train(self) -> None: ...

    def after_train(self) -> None: ...

    def before_step(self) -> None: ...

    def after_step(self) -> None: ...

    def close(self) -> None:
        """Release resources; called after training ends, also on error."""

    def state_dict(self) -> dict[str, Any] | None:
        """State this hook keeps across a kill and ``--resume`` (plain values, saved in every
        training checkpoint under ``hooks.<class name>``); None = stateless."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called on resume, before training)."""


class IterationTimer(HookBase):
    """Measures each step's wall time (``time``) and the whole run's."""

    def before_train(self) -> None:
        self._train_start = time.perf_counter()
        self._start_iter = self.trainer.iter

    def before_step(self) -> None:
        self._t0 = time.perf_counter()

    def after_step(self) -> None:
        self.trainer.storage.put("time", time.perf_counter() - self._t0)

    def after_train(self) -> None:
        total = time.perf_counter() - self._train_start
        self.trainer.storage.put("total_train_time", total, smooth=False)


class LRScheduler(HookBase):
    """Logs the LR used by this step, then steps the scheduler once per iteration."""

    def after_step(self) -> None:
        opt = self.trainer.optimizer
        self.trainer.storage.put("lr", opt.param_groups[0]["lr"], smooth=False)
        self.trainer.scheduler.step()


class PeriodicCheckpointer(HookBase):
    """Saves every ``period`` iterations (``iter_*.pth`` + ``last.pth``) and ``final.pth``."""

    def __init__(self, period: int) -> None:
        self.period = period

    def after_step(self) -> None:
        it = self.trainer.iter
        if it % self.period == 0 and it < self.trainer.max_iter:
            self.trainer.save_checkpoint(final=False)

    def after_train(self) -> None:
        self.trainer.save_checkpoint(final=True)


class EvalHook(HookBase):
    """Runs ``eval_fn(model) -> dict[str, float]`` every ``period`` iterations and at the end.

    Results go to the storage (so writers log them) and, for the final evaluation, to
    ``output_dir/eval/metrics.json``. Under DDP every rank calls ``eval_fn``; the task's
    evaluation returns the global result (its evaluator gathers every rank's predictions to
    rank 0 and scores them once, ``docs/evaluation.md``), and rank 0's dict is broadcast so
    all ranks log the same values. Metrics are never averaged over ranks: an AP or a median of
    shards is not the AP or median of the set. Only rank 0 writes the file.

    With a :class:`~pointforge.engine.best.BestTracker` (``train.best_metric``), each
    evaluation also updates ``checkpoints/best.pth`` and the patience count, and asks the
    trainer to stop when patience runs out; ``metrics.json`` then records the best iteration.
    An evaluation of the iteration already evaluated (the end of an early-stopped run) is not
    run twice.
    """

    def __init__(
        self,
        period: int,
        eval_fn: Callable[[], dict[str, float]],
        best: BestTracker | None = None,
        best_payload: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.period = period
        self.eval_fn = eval_fn
        self.best = best
        self.best_payload = best_payload
        self.last_results: dict[str, float] = {}
        self._evaluated_at: int | None = None

    def _run(self) -> dict[str, float]:
        t = self.trainer
        if self._evaluated_at == t.iter:
            return self.last_results
        results = self.eval_fn()
        bad = {k: v for k, v in results.items() if not isinstance(v, int | float)}
        if bad:
            raise TypeError(f"evaluate() must return a flat dict of floats; got {bad}")
        results = comm.broadcast(results)
        t.storage.put_many({f"eval/{k}": v for k, v in results.items()}, smooth=False)
        self.last_results = results
        self._evaluated_at = t.iter
        if self.best is not None:
            assert self.best_payload is not None
            if self.best.update(results, t.iter, self.best_payload):
                t.request_stop(self.best.stop_reason() or "early stop")
        return results

    def after_step(self) -> None:
        it = self.trainer.iter
        if self.period > 0 and it % self.period == 0 and it < self.trainer.max_iter:
            self._run()

    def after_train(self) -> None:
        results = self._run()
        if not comm.is_main_process():
            return
        out = Path(self.trainer.output_dir) / "eval" / "metrics.json"
        payload: dict[str, Any] = {"iteration": self.trainer.iter, "metrics": results}
        if self.best is not None:
            payload["best"] = self.best.summary()
        atomic_write_text(json.dumps(payload, indent=2) + "\n", out)

    def state_dict(self) -> dict[str, Any] | None:
        return {"best": self.best.state_dict()} if self.best is not None else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.best is not None and "best" in state:
            self.best.load_state_dict(state["best"])


class PreciseBN(HookBase):
    """Recomputes the eval model's BatchNorm statistics over ``num_iter`` batches before each
    evaluation (same ``period`` as :class:`EvalHook`, and at the end of training).

    The batches come from a fresh training loader positioned where training will continue, so
    they depend only on the iteration, and all RNG states are restored afterwards: the training
    run is exactly the same, and resumable, with or without this hook.
    """

    def __init__(self, period: int, num_iter: int) -> None:
        self.period = period
        self.num_iter = num_iter
        self._done_at: int | None = None

    def _run(self) -> None:
        t = self.trainer
        if self._done_at == t.iter:  # an early-stopped run's end: the statistics are current
            return
        self._done_at = t.iter
        model = t.eval_model
        rng = capture_rng_state()
        try:
            batches = t.task.build_train_loader(t.iter * t.accumulate_steps)
            recompute_bn_stats(
                model,
                lambda batch: t.task.training_step(model, move_to_device(batch, t.device)),
                batches,
                self.num_iter,
            )
        finally:
            restore_rng_state(rng)

    def after_step(self) -> None:
        it = self.trainer.iter
        if self.period > 0 and it % self.period == 0 and it < self.trainer.max_iter:
            self._run()

    def after_train(self) -> None:
        self._run()


class AverageOverRanks(HookBase):
    """Under DDP, replaces this iteration's training scalars (losses, times, grad norm) by their
    mean over ranks on the iterations the writers log, so ``metrics.jsonl`` and TensorBoard show
    the loss of the global batch rather than rank 0's shard. A no-op in a single process.

    It is a collective, so it runs on every rank, after the hooks that put scalars and before
    the writers (which exist on rank 0 only). ``eval/*`` are already global (EvalHook). The
    progress bar's smoothed loss stays rank 0's: averaging every step would cost a collective
    per iteration for a display.
    """

    def __init__(self, period: int) -> None:
        self.period = period

    def after_step(self) -> None:
        if comm.get_world_size() == 1:
            return
        t = self.trainer
        scalars = _scalars_at(t, t.iter)
        has_eval = any(k.startswith("eval/") for k in scalars)
        if t.iter % self.period and t.iter != t.max_iter and not has_eval:
            return
        local = {k: v for k, v in scalars.items() if not k.startswith("eval/")}
        t.storage.put_many(comm.reduce_metrics(local), smooth=False)


def _scalars_at(trainer: Trainer, iteration: int) -> dict[str, float]:
    return {k: v for k, (v, it) in trainer.storage.latest().items() if it == iteration}


class JSONWriter(HookBase):
    """Appends one JSON object per logged iteration to ``metrics.jsonl``."""

    def __init__(self, path: str | Path, period: int) -> None:
        self.path = Path(path)
        self.period = period
        self._file: Any = None

    def before_train(self) -> None:
        self._drop_lines_after(self.trainer.iter)
        self._file = self.path.open("a")
        self._written: tuple[int, set[str]] = (-1, set())

    def _drop_lines_after(self, iteration: int) -> None:
        """On resume, forget lines a killed run logged past its last checkpoint.

        Those iterations are re-run from the checkpoint, so keeping them would leave two
        records per iteration. Unparseable lines (a torn final write) are dropped too. The
        rewrite is atomic, so a kill here loses nothing.
        """
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if int(record.get("iteration", 0)) <= iteration:
                kept.append(line)
        atomic_write_text("".join(k + "\n" for k in kept), self.path)

    def _write(self) -> None:
        """Write this iteration's scalars not written yet (the final eval comes in after_train)."""
        it = self.trainer.iter
        done = self._written[1] if self._written[0] == it else set()
        new = {k: v for k, v in _scalars_at(self.trainer, it).items() if k not in done}
        if not new:
            return
        self._file.write(json.dumps({"iteration": it, **new}) + "\n")
        self._file.flush()
        self._written = (it, done | new.keys())

    def after_step(self) -> None:
        it = self.trainer.iter
        has_eval = any(k.startswith("eval/") for k in _scalars_at(self.trainer, it))
        if it % self.period == 0 or it == self.trainer.max_iter or has_eval:
            self._write()

    def after_train(self) -> None:
        self._write()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorboardWriter(HookBase):
    """Writes every scalar of logged iterations to TensorBoard event files under ``tb/``.

    On resume from a checkpoint at iteration ``i``, the run re-does ``i + 1`` onwards, so only
    events a killed run logged from ``i + 1`` on are stale: ``purge_step = i + 1`` (TensorBoard
    hides events with ``step >= purge_step``). Purging from ``i`` would hide step ``i``'s loss
    and evaluation, which the resumed run never logs again. Like :class:`JSONWriter`, each
    scalar is written once per iteration (the final step's losses in ``after_step``, its final
    evaluation in ``after_train``).
    """

    def __init__(self, log_dir: str | Path, period: int) -> None:
        self.log_dir = str(log_dir)
        self.period = period
        self._writer: Any = None
        self._written: tuple[int, set[str]] = (-1, set())

    def before_train(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        start = self.trainer.iter
        self._writer = SummaryWriter(self.log_dir, purge_step=start + 1 if start else None)
        self._written = (-1, set())

    def _write(self) -> None:
        it = self.trainer.iter
        done = self._written[1] if self._written[0] == it else set()
        new = {k: v for k, v in _scalars_at(self.trainer, it).items() if k not in done}
        for k, v in new.items():
            self._writer.add_scalar(k, v, it)
        self._written = (it, done | new.keys())

    def after_step(self) -> None:
        it = self.trainer.iter
        has_eval = any(k.startswith("eval/") for k in _scalars_at(self.trainer, it))
        if it % self.period == 0 or it == self.trainer.max_iter or has_eval:
            self._write()

    def after_train(self) -> None:
        self._write()
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ProgressBar(HookBase):
    """A tqdm bar: smoothed loss, iterations per second and ETA."""

    def __init__(self, period: int = 1, enabled: bool = True) -> None:
        self.period = max(1, min(period, 10))
        self.enabled = enabled
        self._bar: Any = None

    def before_train(self) -> None:
        from tqdm.auto import tqdm

        t = self.trainer
        self._bar = tqdm(
            total=t.max_iter,
            initial=t.iter,
            desc="train",
            unit="it",
            dynamic_ncols=True,
            disable=not self.enabled,
        )

    def after_step(self) -> None:
        it = self.trainer.iter
        if it % self.period and it != self.trainer.max_iter:
            return
        loss = self.trainer.storage.smoothed("total_loss")
        lr = self.trainer.storage.latest().get("lr", (float("nan"), 0))[0]
        self._bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "?", lr=f"{lr:.2e}")
        self._bar.update(it - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
