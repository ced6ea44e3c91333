"""The task-agnostic, iteration-based training loop.

The Trainer owns the model, optimiser, scheduler, iteration counter and hooks; the Task owns
everything domain-specific. One step (= one "iteration") is:
``solver.accumulate_steps`` times {fetch a batch, ``task.training_step`` → dict of named losses,
sum, check finiteness, backward of loss / accumulate_steps}, then (clip), optimiser step, EMA
update, hooks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pointforge.config.schema import Config
from pointforge.config.validate import to_dict
from pointforge.data.loader import move_to_device
from pointforge.engine.checkpoint import Checkpointer, capture_rng_state, restore_rng_state
from pointforge.engine.ema import ModelEMA
from pointforge.engine.events import EventStorage
from pointforge.engine.freeze import freeze_by_patterns
from pointforge.engine.hooks import HookBase
from pointforge.engine.launch import wrap_ddp
from pointforge.engine.optim import build_lr_scheduler, build_optimizer
from pointforge.engine.precision import warn_if_emulated_bf16
from pointforge.tasks.base import Task

log = logging.getLogger("pointforge")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf. Raised before the optimiser step, so no weight is touched and
    the last checkpoint on disk stays the last good one."""


class Trainer:
    """Runs ``cfg.solver.max_iter`` iterations of ``task`` with ``hooks``."""

    def __init__(self, task: Task, cfg: Config, output_dir: str | Path) -> None:
        self.task = task
        self.cfg = cfg
        self.output_dir = Path(output_dir)
        self.device = task.device
        self.model = task.build_model()
        self.frozen = freeze_by_patterns(self.model, cfg.model.freeze)
        # The LR follows the batch when solver.reference_batch_size names another one; logged
        # once, by rank 0.
        self.optimizer = build_optimizer(self.model, cfg.solver, cfg.data.batch_size)
        # What training_step sees: DDP around self.model under torchrun, else self.model. It
        # shares self.model's parameters, so checkpoints, EMA and eval use the plain module.
        self.train_model = wrap_ddp(self.model, cfg.train.ddp.find_unused_parameters)
        self.scheduler = build_lr_scheduler(self.optimizer, cfg.solver)
        self.checkpointer = Checkpointer(self.output_dir / "checkpoints", cfg.train.keep_last)
        self.storage = EventStorage()
        self.iter = 0
        self.max_iter = cfg.solver.max_iter
        self.hooks: list[HookBase] = []
        # Set by request_stop (early stopping): the loop ends after the current iteration and
        # the run finishes as a completed one (final checkpoint, final evaluation).
        self.stop_reason: str | None = None
        # Hook states of the checkpoint resumed from, handed to the hooks as they register.
        self._hook_states: dict[str, Any] = {}
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.amp)
        if self.amp_dtype == torch.float16 and self.device.type != "cuda":
            raise ValueError("train.amp=fp16 needs CUDA; use train.amp=bf16 on CPU")
        if self.amp_dtype == torch.bfloat16:
            warn_if_emulated_bf16(self.device, "train.amp=bf16")
        # GradScaler only for fp16: bf16 has float32's exponent range, so no underflow.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.amp == "fp16")
        self.accumulate_steps = cfg.solver.accumulate_steps
        ema = cfg.train.ema
        self.ema = ModelEMA(self.model, ema.decay, ema.tau) if ema.enabled else None

    @property
    def eval_model(self) -> torch.nn.Module:
        """The model to evaluate: the EMA weights when ``train.ema.enabled``, else the model."""
        return self.ema.module if self.ema is not None else self.model

    # -- hooks ---------------------------------------------------------------------------------
    def register_hooks(self, hooks: list[HookBase]) -> None:
        for h in hooks:
            h.trainer = self
            state = self._hook_states.get(type(h).__name__)
            if state is not None:
                h.load_state_dict(state)
            self.hooks.append(h)

    def request_stop(self, reason: str) -> None:
        """End training after the current iteration, as if ``max_iter`` were reached."""
        self.stop_reason = reason

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, scheduler, RNG, sampler."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            # The sampler restarts at iteration * accumulate_steps * batch_size samples.
            "sampler": {
                "iteration": self.iter,
                "batch_size": self.cfg.data.batch_size,
                "accumulate_steps": self.accumulate_steps,
            },
            "config": to_dict(self.cfg),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        hooks = {type(h).__name__: h.state_dict() for h in self.hooks}
        state["hooks"] = {k: v for k, v in hooks.items() if v is not None}
        if self.stop_reason is not None:
            state["stopped"] = self.stop_reason
        return state

    def save_checkpoint(self, final: bool = False) -> Path:
        return self.checkpointer.save(self.state_dict(), self.iter, final=final)

    def resume(self) -> None:
        """Restore the full state from ``checkpoints/last.pth``."""
        ckpt = self.checkpointer.load_last()
        self.model.load_state_dict(ckpt["model"])
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except ValueError as exc:  # parameter groups differ in number or size
            raise ValueError(
                f"cannot resume {self.checkpointer.last_path}: the optimiser's parameter groups "
                f"changed ({exc}); keep model.freeze, solver.weight_decay_norm and "
                "solver.weight_decay_bias as they were when the run started"
            ) from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"])
        self.iter = int(ckpt["iteration"])
        for key, now in (
            ("data.batch_size", self.cfg.data.batch_size),
            ("solver.accumulate_steps", self.accumulate_steps),
        ):
            # Both fix the sampler position; older checkpoints predate accumulation (= 1).
            saved = ckpt["sampler"].get(key.split(".")[1], 1)
            if saved != now:
                raise ValueError(
                    f"cannot resume {self.checkpointer.last_path}: it was trained with "
                    f"{key}={saved}, config now says {now}"
                )
        if self.ema is not None:
            if "ema" in ckpt:
                self.ema.load_state_dict(ckpt["ema"])
            else:
                log.warning("train.ema enabled on resume: EMA starts from the resumed weights")
                self.ema = ModelEMA(self.model, self.cfg.train.ema.decay, self.cfg.train.ema.tau)
        self._hook_states = dict(ckpt.get("hooks", {}))
        self.stop_reason = ckpt.get("stopped")
        self.storage.iteration = self.iter

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> None:
        # The loader position counts batches, i.e. micro-batches when accumulating.
        data = self.task.build_train_loader(self.iter * self.accumulate_steps)
        self.model.train()
        try:
            for h in self.hooks:
                h.before_train()
            while self.iter < self.max_iter and self.stop_reason is None:
                # Scalars of this step are recorded under the iteration count it completes.
                self.storage.iteration = self.iter + 1
                for h in self.hooks:
                    h.before_step()
                self.run_step(data)
                self.iter += 1
                for h in self.hooks:
                    h.after_step()
            self.storage.iteration = self.iter
            for h in self.hooks:
                h.after_train()
        finally:
            for h in self.hooks:
                h.close()

    def run_step(self, data: Iterator[dict[str, Any]]) -> None:
        """One optimiser step over ``accumulate_steps`` micro-batches.

        Each micro-batch loss is divided by ``accumulate_steps``, so with per-batch mean losses
        N micro-batches of B samples give the gradient of one batch of N·B samples (exactly so
        for models without batch-dependent layers such as BatchNorm).
        """
        n = self.accumulate_steps
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        data_time = 0.0
        for micro in range(n):
            t0 = time.perf_counter()
            batch = move_to_device(next(data), self.device)
            data_time += time.perf_counter() - t0
            # DDP all-reduces gradients on every backward; only the last micro-batch needs it.
            last = micro == n - 1
            no_sync = getattr(self.train_model, "no_sync", None)
            with no_sync() if no_sync is not None and not last else contextlib.nullcontext():
                values = self._forward_backward(batch, micro)
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v / n  # mean over micro-batches
        self._clip_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.storage.put_many(sums)
        self.storage.put("total_loss", sum(sums.values()))
        self.storage.put("data_time", data_time)

    def _forward_backward(self, batch: dict[str, Any], micro: int) -> dict[str, float]:
        """Loss of one micro-batch, checked for NaN/inf *before* backward; returns its values."""
        with torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            losses = self.task.training_step(self.train_model, batch)
        total = sum(losses.values())
        assert isinstance(total, torch.Tensor)
        values = {k: float(v.detach()) for k, v in losses.items()}
        total_value = sum(values.values())
        if not math.isfinite(total_value):
            n = self.accumulate_steps
            where = f" (micro-batch {micro + 1}/{n})" if n > 1 else ""
            raise NonFiniteLossError(
                f"loss is {total_value} at iteration {self.iter + 1}{where} "
                f"(components: {values}); stopping. The last checkpoint in "
                f"{self.checkpointer.directory} is untouched."
            )
        if self.accumulate_steps > 1:
            total = total / self.accumulate_steps
        self.scaler.scale(total).backward()
        return values

    def _clip_gradients(self) -> None:
        """Clip by value, then by global norm (logged as ``grad_norm``), on unscaled gradients."""
        solver = self.cfg.solver
        if solver.clip_grad_norm is None and solver.clip_grad_value is None:
            return
        self.scaler.unscale_(self.optimizer)  # a no-op unless fp16 scaling is on
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if solver.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(params, solver.clip_grad_value)
        if solver.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, solver.clip_grad_norm)
            self.storage.put("grad_norm", float(norm))
