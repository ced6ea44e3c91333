"""Exponential moving average (EMA) of model weights.

Why: the average of the weights over the last few thousand optimiser steps is usually a
better model than the last iterate (Polyak averaging), at the cost of one extra copy of the
weights. The averaged copy is what gets evaluated when EMA is enabled, and its state is saved in
every checkpoint so that ``--resume`` continues the average exactly.

Decay schedule: ``d(n) = decay * (1 - exp(-n / tau))`` after ``n`` updates. This warm-up ramp
is the one of the YOLOv5/YOLOX ``ModelEMA`` (yolox/utils/ema.py, decay 0.9998, tau 2000): with a
constant 0.9998 the first, random weights would dominate the average for ~5000 steps.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside a (Distributed)DataParallel wrapper, else ``model`` itself."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


class ModelEMA:
    """Keeps ``self.module``, an averaged copy of a model (parameters and float buffers).

    Integer buffers (BatchNorm's ``num_batches_tracked``) are copied, not averaged. The copy
    never receives gradients and lives on the same device as the model.
    """

    def __init__(self, model: nn.Module, decay: float, tau: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        if tau <= 0:
            raise ValueError(f"EMA tau must be > 0, got {tau}")
        self.module = copy.deepcopy(unwrap_model(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = 0

    def current_decay(self) -> float:
        """Decay used by the next :meth:`update` (``updates`` already counts it)."""
        return self.decay * (1.0 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``ema = d * ema + (1 - d) * model`` for every floating-point tensor of the state.

        One fused ``_foreach_lerp_`` over all tensors (as ``torch.optim.swa_utils`` does for its
        EMA) instead of two kernels per tensor: several times faster on models with many small
        tensors, which matters because this runs after every optimiser step.
        """
        self.updates += 1
        d = self.current_decay()
        current = unwrap_model(model).state_dict()
        ema_floats, model_floats = [], []
        for name, ema_value in self.module.state_dict().items():
            value = current[name].detach()
            if ema_value.dtype.is_floating_point:
                ema_floats.append(ema_value)
                model_floats.append(value.to(ema_value.dtype))
            else:
                ema_value.copy_(value)
        if ema_floats:
            # lerp(ema, model, w) = ema + w * (model - ema) = d * ema + (1 - d) * model
            torch._foreach_lerp_(ema_floats, model_floats, 1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])
