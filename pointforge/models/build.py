"""The one model-building helper every task uses: registry → weights → device → layout.

Why one helper: building a model is the same four steps for every task (look ``model.name``
up with the model's own ``model.*`` keys, fit ``model.weights`` under the loading policy of
:mod:`pointforge.models.loading`, move to the device, convert to channels_last), and a
checkpoint of the wrong architecture must be reported the same way everywhere: in one line
naming what the checkpoint holds and what the config asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pointforge.config.compose import own_keys
from pointforge.config.schema import Config
from pointforge.models.loading import WeightsError, load_weights
from pointforge.registry import MODELS


def build_model(
    cfg: Config,
    device: torch.device,
    *,
    reinit: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
    **kwargs: Any,
) -> nn.Module:
    """``MODELS[cfg.model.name](**kwargs, **model keys)`` with ``cfg.model.weights`` fitted
    (plus the task's extra ``reinit`` / ``allow_unexpected`` patterns), on ``device``, in
    channels_last when ``train.channels_last``."""
    name = cfg.model.name
    if name is None:
        raise ValueError(f"config key 'model.name' is null and task '{cfg.task}' has no default")
    model: nn.Module = MODELS.build(name, **kwargs, **own_keys(cfg.model))
    weights = cfg.model.weights
    if weights:
        try:
            load_weights(
                model,
                weights,
                reinit=(*cfg.model.load.reinit_mismatched, *reinit),
                allow_unexpected=allow_unexpected,
            )
        except WeightsError as exc:
            held = describe_checkpoint(weights)
            if held is None or held == (cfg.task, name):
                raise
            raise WeightsError(
                f"weights {weights} hold a model of task '{held[0]}' (model.name "
                f"'{held[1]}'), but the config asks for task '{cfg.task}' with model.name "
                f"'{name}'; pass a checkpoint of that model"
            ) from exc
    model = model.to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def describe_checkpoint(path: str | Path) -> tuple[str, str] | None:
    """``(task, model.name)`` from a pointforge checkpoint's stored config; ``None`` when the
    file has no stored config (a plain state dict, MagicLeap weights) or cannot be read."""
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:
        return None
    stored = obj.get("config") if isinstance(obj, dict) else None
    if not isinstance(stored, dict):
        return None
    model = stored.get("model")
    if not isinstance(model, dict):
        model = {}
    return str(stored.get("task")), str(model.get("name"))
