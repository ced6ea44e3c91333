"""The task-agnostic, iteration-based training loop.

The Trainer owns the model, optimiser, scheduler, iteration counter and hooks; the Task owns
everything domain-specific. One step is: fetch a batch, ``task.training_step`` → dict of named
losses, sum, check finiteness, backward, (clip), optimiser step, hooks.
"""

from __future__ import annotations

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
from pointforge.engine.events import EventStorage
from pointforge.engine.hooks import HookBase
from pointforge.engine.optim import build_lr_scheduler, build_optimizer
from pointforge.tasks.base import Task


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
        self.optimizer = build_optimizer(self.model, cfg.solver)
        self.scheduler = build_lr_scheduler(self.optimizer, cfg.solver)
        self.checkpointer = Checkpointer(self.output_dir / "checkpoints", cfg.train.keep_last)
        self.storage = EventStorage()
        self.iter = 0
        self.max_iter = cfg.solver.max_iter
        self.hooks: list[HookBase] = []
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.amp)
        if self.amp_dtype == torch.float16 and self.device.type != "cuda":
            raise ValueError("train.amp=fp16 needs CUDA; use train.amp=bf16 on CPU")
        # GradScaler only for fp16: bf16 has float32's exponent range, so no underflow.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.amp == "fp16")

    # -- hooks ---------------------------------------------------------------------------------
    def register_hooks(self, hooks: list[HookBase]) -> None:
        for h in hooks:
            h.trainer = self
            self.hooks.append(h)

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, scheduler, RNG, sampler."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            # Batches consumed so far; the sampler restarts at iteration * batch_size.
            "sampler": {"iteration": self.iter, "batch_size": self.cfg.data.batch_size},
            "config": to_dict(self.cfg),
        }

    def save_checkpoint(self, final: bool = False) -> Path:
        return self.checkpointer.save(self.state_dict(), self.iter, final=final)

    def resume(self) -> None:
        """Restore the full state from ``checkpoints/last.pth``."""
        ckpt = self.checkpointer.load_last()
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"])
        self.iter = int(ckpt["iteration"])
        saved_bs = ckpt["sampler"]["batch_size"]
        if saved_bs != self.cfg.data.batch_size:
            raise ValueError(
                f"cannot resume {self.checkpointer.last_path}: it was trained with "
                f"data.batch_size={saved_bs}, config now says {self.cfg.data.batch_size}"
            )
        self.storage.iteration = self.iter

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> None:
        data: Iterator[dict[str, Any]] = self.task.build_train_loader(self.iter)
        self.model.train()
        try:
            for h in self.hooks:
                h.before_train()
            while self.iter < self.max_iter:
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
        t0 = time.perf_counter()
        batch = move_to_device(next(data), self.device)
        data_time = time.perf_counter() - t0
        with torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            losses = self.task.training_step(self.model, batch)
        total = sum(losses.values())
        assert isinstance(total, torch.Tensor)
        values = {k: float(v.detach()) for k, v in losses.items()}
        total_value = sum(values.values())
        if not math.isfinite(total_value):
            raise NonFiniteLossError(
                f"loss is {total_value} at iteration {self.iter + 1} "
                f"(components: {values}); stopping. The last checkpoint in "
                f"{self.checkpointer.directory} is untouched."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.solver.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.solver.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.storage.put_many(values)
        self.storage.put("total_loss", total_value)
        self.storage.put("data_time", data_time)
