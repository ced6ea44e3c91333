"""Run orchestration: output-dir policy, config snapshot, task build, hooks, resume.

This is the one place that turns a validated config into a running Trainer, shared by the CLI
and the Python API. It refuses to mix two runs in one directory, so nothing is lost by accident.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from pointforge.config.loader import dump_config
from pointforge.config.schema import Config
from pointforge.config.validate import ConfigError, to_dict
from pointforge.data.errors import apply_sharing_strategy
from pointforge.data.loader import explain_data_error
from pointforge.engine import comm
from pointforge.engine.best import BestTracker, best_payload
from pointforge.engine.checkpoint import Checkpointer, atomic_write_text
from pointforge.engine.hooks import (
    AverageOverRanks,
    EvalHook,
    IterationTimer,
    JSONWriter,
    LRScheduler,
    PeriodicCheckpointer,
    PreciseBN,
    ProgressBar,
    TensorboardWriter,
)
from pointforge.engine.launch import distributed, resolve_device, seed_everything
from pointforge.engine.trainer import Trainer
from pointforge.registry import HOOKS, TASKS, load_builtin
from pointforge.tasks.base import Task

log = logging.getLogger("pointforge")

RUN_ARTEFACTS = ("config.yaml", "metrics.jsonl", "tb", "checkpoints", "eval")


class OutputDirError(RuntimeError):
    """The output directory holds another run and neither --resume nor --overwrite was given."""


def build_task(cfg: Config, device: torch.device | None = None) -> Task:
    """The run's Task object (the families are loaded by ``load_config``; loaded again here
    for a config built some other way)."""
    load_builtin()
    if cfg.task is None:
        raise ConfigError("config key 'task' is null: name the task to run (e.g. task: superpoint)")
    task: Task = TASKS.build(cfg.task, cfg, device or resolve_device(cfg.device))
    return task


def prepare_output_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Apply the no-silent-loss policy to ``out`` before anything is written."""
    if resume and overwrite:
        raise OutputDirError("--resume and --overwrite are mutually exclusive")
    existing = [name for name in RUN_ARTEFACTS if (out / name).exists()]
    if resume:
        if Checkpointer(out / "checkpoints").resume_path() is not None:
            return
        # Nothing to resume: a run killed before its first checkpoint (or before it wrote
        # anything at all, or while this very restart was deleting its artefacts). Nothing can
        # be lost, so start it, as detectron2's resume_or_load does, and a cluster requeue
        # script that always passes --resume just works.
        log.warning("--resume: %s holds no checkpoint yet; starting the run from iteration 0", out)
        overwrite = True
    if existing and not overwrite:
        raise OutputDirError(
            f"output dir {out} already holds a run ({', '.join(existing)}); pass --resume to "
            "continue it or --overwrite to replace it"
        )
    for name in existing:  # explicit --overwrite: remove only our own artefacts
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_config(cfg: Config, out: Path) -> None:
    """Write the resolved config atomically; on resume, report keys that changed."""
    path = out / "config.yaml"
    if path.is_file():
        old = _flatten(yaml.safe_load(path.read_text()) or {})
        new = _flatten(to_dict(cfg))
        for k in sorted(new.keys() & old.keys()):
            if old[k] != new[k]:
                log.warning("config changed on resume: %s: %r -> %r", k, old[k], new[k])
        # Keys a newer pointforge added (at their defaults) or an older one had: not a change
        # the user made, so one line, not a warning per key.
        added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
        if added:
            log.info("config keys new since this run started (defaults): %s", ", ".join(added))
        if removed:
            log.warning("config keys no longer in the schema: %s", ", ".join(removed))
    atomic_write_text(dump_config(cfg), path)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def default_hooks(trainer: Trainer, task: Task, cfg: Config) -> list[Any]:
    out = trainer.output_dir
    period = cfg.train.log_period
    # PreciseBN sits before the checkpointer so checkpoints hold the stats it recomputes.
    precise_bn = cfg.train.precise_bn
    artefacts = out if comm.is_main_process() else None
    writers = [
        JSONWriter(out / "metrics.jsonl", period),
        TensorboardWriter(out / "tb", period),
        ProgressBar(period, enabled=cfg.train.progress_bar),
    ]
    return [
        IterationTimer(),
        LRScheduler(),
        *([PreciseBN(cfg.train.eval_period, precise_bn.num_iter)] if precise_bn.enabled else []),
        # Evaluation (and the best checkpoint / early stop it drives) before the checkpointer:
        # a checkpoint at N must hold the outcome of N's evaluation, which a resume never redoes.
        eval_hook(trainer, task, cfg, artefacts),
        PeriodicCheckpointer(cfg.train.checkpoint_period),
        # The task's own hooks, then those the config names (plugins register them in HOOKS).
        *task.extra_hooks(trainer),
        *(HOOKS.build(name, trainer) for name in cfg.train.hooks),
        AverageOverRanks(period),  # under DDP: logged losses are global-batch means
        *(writers if comm.is_main_process() else []),
    ]


def eval_hook(trainer: Trainer, task: Task, cfg: Config, artefacts: Path | None) -> EvalHook:
    """The run's evaluation hook, with the best-checkpoint tracker when ``train.best_metric``.

    ``trainer.eval_model`` is the EMA of the weights when ``train.ema.enabled``. Under DDP all
    ranks evaluate (each its shard, gathered by the task's evaluator); only rank 0 gets the
    output dir for artefacts (and writes ``best.pth``).
    """
    t = cfg.train
    best = None
    if t.best_metric is not None:
        best = BestTracker(t.best_metric, t.best_mode, t.patience, trainer.checkpointer.directory)
    return EvalHook(
        t.eval_period,
        lambda: task.evaluate(trainer.eval_model, artefacts),
        best,
        lambda: best_payload(trainer.eval_model, to_dict(cfg)),
    )


def train(cfg: Config, resume: bool = False, overwrite: bool = False) -> dict[str, float]:
    """Train ``cfg`` into ``cfg.output_dir``; returns the final evaluation metrics.

    Under torchrun (``WORLD_SIZE`` > 1) this joins the process group for the run (unless the
    caller already did), every rank trains on its shard of each global batch of
    ``data.batch_size`` samples, and rank 0 alone writes the output directory, which must be
    on a filesystem all nodes share for ``--resume``.
    """
    assert cfg.output_dir is not None, "config must be resolved (load_config does it)"
    with distributed(resolve_device(cfg.device), cfg.train.ddp.backend):
        return _train(cfg, resume, overwrite)


def on_main_process(fn: Callable[[], None]) -> None:
    """Run ``fn`` on rank 0 only and raise its error on every rank, so no rank waits forever
    for a rank 0 that refused to start (e.g. on an occupied output directory)."""
    error: BaseException | None = None
    if comm.is_main_process():
        try:
            fn()
        except Exception as exc:  # re-raised below, on every rank
            error = exc
    error = comm.broadcast(error)
    if error is not None:
        raise error


def check_world_size(cfg: Config) -> None:
    """The global batch must split evenly over the ranks (per-rank batch = batch / ranks)."""
    world = comm.get_world_size()
    if cfg.data.batch_size % world:
        raise ValueError(
            f"config key 'data.batch_size' is the global batch and must be divisible by the "
            f"number of processes: {cfg.data.batch_size} samples over {world} ranks"
        )


def _train(cfg: Config, resume: bool, overwrite: bool) -> dict[str, float]:
    out = Path(cfg.output_dir or "")
    check_world_size(cfg)
    on_main_process(lambda: prepare_output_dir(out, resume, overwrite))
    checkpointer = Checkpointer(out / "checkpoints")
    resume = resume and checkpointer.resume_path() is not None  # None: restarted from 0
    if resume:
        ckpt = checkpointer.load_last()
        stopped = ckpt.get("stopped")
        if int(ckpt.get("iteration", -1)) >= cfg.solver.max_iter or stopped:
            why = stopped or f"solver.max_iter={cfg.solver.max_iter}"
            more = (
                "Raise train.patience (or set it to 0) and solver.max_iter to train further."
                if stopped
                else "Raise solver.max_iter to train further."
            )
            msg = (
                f"run in {out} already finished at iteration {ckpt['iteration']} "
                f"({why}); nothing to do. {more}"
            )
            if comm.is_main_process():
                print(msg)
            saved = read_final_metrics(out)
            return saved if saved is not None else evaluate_finished_run(cfg, out)
    # One stream per rank (dropout masks, random choices in losses must not repeat across
    # ranks); DDP makes the initial weights rank 0's anyway, and data are seeded by position.
    seed_everything(cfg.seed + comm.get_rank(), cfg.deterministic)
    apply_sharing_strategy(cfg.data.sharing_strategy)
    if comm.is_main_process():
        write_config(cfg, out)
    task = build_task(cfg)
    trainer = Trainer(task, cfg, out)
    if resume:
        if comm.is_main_process():
            trainer.checkpointer.remove_stale_temp_files()
        trainer.resume()
        log.info("resumed from %s at iteration %d", checkpointer.resume_path(), trainer.iter)
    hooks = default_hooks(trainer, task, cfg)
    trainer.register_hooks(hooks)
    try:
        trainer.train()
    except Exception as exc:
        # A worker death is raised by torch's SIGCHLD handler wherever the main thread is.
        named = explain_data_error(exc)
        if named is None:
            raise
        raise named from exc
    eval_hook = next(h for h in hooks if isinstance(h, EvalHook))
    return eval_hook.last_results


def _no_periodic(cfg: Config) -> Any:
    return dataclasses.replace(cfg.train, eval_period=0)


def read_final_metrics(out: Path) -> dict[str, float] | None:
    """``eval/metrics.json`` of a finished run; ``None`` if missing or torn by a kill."""
    try:
        return json.loads((out / "eval" / "metrics.json").read_text())["metrics"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def evaluate_finished_run(cfg: Config, out: Path) -> dict[str, float]:
    """Run the final evaluation of a run killed after its final checkpoint but before
    ``eval/metrics.json`` was written, from that checkpoint, exactly as the run would have."""
    log.warning("run in %s finished training but has no final evaluation; evaluating now", out)
    seed_everything(cfg.seed + comm.get_rank(), cfg.deterministic)  # as _train seeds
    task = build_task(cfg)
    trainer = Trainer(task, cfg, out)
    trainer.resume()
    artefacts = out if comm.is_main_process() else None
    hook = eval_hook(trainer, task, dataclasses.replace(cfg, train=_no_periodic(cfg)), artefacts)
    trainer.register_hooks([hook])
    hook.after_train()
    return hook.last_results
