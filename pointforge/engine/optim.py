"""Optimiser and LR schedule from ``cfg.solver``.

The schedule is a :class:`~torch.optim.lr_scheduler.LambdaLR` of the iteration (warmup ×
constant / multistep / cosine), so its state is a plain integer and resumes exactly.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from pointforge.config.schema import SolverConfig
from pointforge.engine import comm

# Layers whose affine parameters only rescale normalised activations: decaying them towards 0
# fights the normalisation rather than regularising (why detectron2/timm exempt them).
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)

log = logging.getLogger("pointforge")


def param_groups(model: nn.Module, cfg: SolverConfig) -> list[dict[str, Any]]:
    """Trainable parameters split by weight decay: norm layers, other biases, the rest.

    Parameters of norm layers (weight and bias) get ``weight_decay_norm``, biases of other
    layers ``weight_decay_bias``, everything else ``weight_decay`` (null = ``weight_decay``).
    Groups with the same decay are merged and parameters keep ``model.parameters()`` order, so
    with the default config there is one group, as in checkpoints written before this split.
    Frozen parameters (``requires_grad=False``) are left out. Each group has a ``names`` list.
    """
    decay_norm = cfg.weight_decay if cfg.weight_decay_norm is None else cfg.weight_decay_norm
    decay_bias = cfg.weight_decay if cfg.weight_decay_bias is None else cfg.weight_decay_bias
    groups: dict[float, dict[str, Any]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if isinstance(module, NORM_TYPES):
                decay = decay_norm
            elif name == "bias":
                decay = decay_bias
            else:
                decay = cfg.weight_decay
            group = groups.setdefault(decay, {"params": [], "names": [], "weight_decay": decay})
            group["params"].append(param)
            group["names"].append(f"{module_name}.{name}" if module_name else name)
    if not groups:
        raise ValueError("no trainable parameters: check model.freeze")
    return list(groups.values())


def _betas(cfg: SolverConfig) -> tuple[float, float]:
    """``solver.betas`` as the pair Adam/AdamW take: (first, second) moment decay."""
    if len(cfg.betas) != 2:
        raise ValueError(f"config key 'solver.betas' must hold 2 numbers, got {list(cfg.betas)}")
    return cfg.betas[0], cfg.betas[1]


def scaled_lr(cfg: SolverConfig, batch_size: int) -> tuple[float, str | None]:
    """``(lr to use, a log line or None)`` for an effective batch of ``batch_size`` samples.

    ``batch_size`` is the global batch per optimiser step (``data.batch_size``, already over
    all ranks, times ``solver.accumulate_steps``). When ``solver.reference_batch_size`` names
    another batch and ``solver.scale_lr`` is on, the LR follows the batch:

    * SGD: linearly, ``lr * B / B_ref`` (Goyal et al. 2017, "Accurate, Large Minibatch SGD"):
      k times the batch averages k times the gradients, so k times the step keeps the update
      per sample.
    * Adam / AdamW: by the square root, ``lr * sqrt(B / B_ref)`` (Malladi et al. 2022, "On the
      SDEs and Scaling Rules for Adaptive Gradient Algorithms"): Adam divides by the gradient's
      RMS, so a larger batch only lowers the noise, and matching the noise scale needs the
      square root, not the ratio.
    """
    ref = cfg.reference_batch_size
    if ref is None or not cfg.scale_lr or ref == batch_size:
        return cfg.lr, None
    ratio = batch_size / ref
    factor = ratio if cfg.optimizer == "sgd" else math.sqrt(ratio)
    rule = "linear" if cfg.optimizer == "sgd" else "square-root"
    lr = cfg.lr * factor
    line = (
        f"solver.lr {cfg.lr:g} was tuned for batch {ref} (solver.reference_batch_size); "
        f"effective batch is {batch_size}: lr scaled x{factor:.3g} ({rule} rule for "
        f"{cfg.optimizer}) to {lr:.3g}; solver.scale_lr=false keeps {cfg.lr:g}"
    )
    return lr, line


def build_optimizer(
    model: nn.Module, cfg: SolverConfig, batch_size: int | None = None
) -> torch.optim.Optimizer:
    """The optimiser over :func:`param_groups`. ``batch_size`` is the data batch per
    micro-step (``data.batch_size``); given, the LR follows it (:func:`scaled_lr`)."""
    params = param_groups(model, cfg)
    lr = cfg.lr
    if batch_size is not None:
        lr, line = scaled_lr(cfg, batch_size * cfg.accumulate_steps)
        if line is not None and comm.is_main_process():
            log.info(line)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=_betas(cfg))
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=_betas(cfg))
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum)
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
