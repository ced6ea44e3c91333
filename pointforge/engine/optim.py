"""Optimiser and LR schedule from ``cfg.solver``.

The schedule is a :class:`~torch.optim.lr_scheduler.LambdaLR` of the iteration (warmup ×
constant / multistep / cosine), so its state is a plain integer and resumes exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pointforge.config.schema import SolverConfig


def build_optimizer(model: nn.Module, cfg: SolverConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    raise ValueError(f"solver.optimizer: unknown optimizer '{cfg.optimizer}'")


def lr_factor(iteration: int, cfg: SolverConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``iteration`` (0-based, before the step)."""
    if cfg.lr_schedule == "multistep":
        factor = cfg.gamma ** sum(iteration >= s for s in cfg.steps)
    elif cfg.lr_schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * min(iteration, cfg.max_iter) / cfg.max_iter))
    else:
        factor = 1.0
    if iteration < cfg.warmup_iters:
        alpha = iteration / cfg.warmup_iters
        factor *= cfg.warmup_factor * (1 - alpha) + alpha
    return factor


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SolverConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, cfg))
