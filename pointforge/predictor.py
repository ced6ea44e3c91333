"""``load_predictor``: a checkpoint → the predictor of the task that made it.

Why here and not in a family: the caller should not have to know which family a checkpoint
belongs to. A pointforge checkpoint stores its run's config, so the task is read from it and
the task builds its own predictor (:meth:`pointforge.tasks.base.Task.build_predictor`). A bare
state dict without a config (the shipped keypoint weights, MagicLeap's v1 file) is routed to
the task whose :meth:`~pointforge.tasks.base.Task.claims_state_dict` recognises its keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pointforge.config.compose import replace_section
from pointforge.config.loader import config_from_stored
from pointforge.config.schema import Config
from pointforge.engine.checkpoint import load_checkpoint, run_weights
from pointforge.models.build import build_model
from pointforge.models.loading import WeightsError, fit_state_dict, read_state_dict
from pointforge.registry import TASKS, load_builtin
from pointforge.tasks.base import Task


def stored_config(path: str | Path) -> Config | None:
    """The run config a pointforge checkpoint stored (re-validated leniently), or ``None``."""
    obj = load_checkpoint(path)
    stored = obj.get("config")
    return config_from_stored(stored) if isinstance(stored, dict) else None


def load_predictor(path: str | Path, device: str = "auto", **options: Any) -> Any:
    """The predictor for the weights at ``path`` (see the module docstring)."""
    return open_predictor(path, device, options)[0]


def load_model(path: str | Path) -> tuple[nn.Module, Config | None, type[Task]]:
    """``(network with the file's weights, its stored config or None, its task class)``: the
    model behind :func:`open_predictor`, also what ``export-onnx`` exports."""
    load_builtin()
    path = run_weights(path)  # a run's folder: its best.pth, else final.pth
    state = read_state_dict(path)  # first: its errors name the file (missing, unsafe, corrupt)
    cfg = stored_config(path)
    if cfg is not None:
        task_cls = TASKS.get(str(cfg.task))
    else:
        claims = [name for name in TASKS.names() if TASKS.get(name).claims_state_dict(state)]
        if not claims:
            raise WeightsError(
                f"weights {path} hold no stored config and no registered task recognises "
                "their keys; pass a pointforge checkpoint (checkpoints/*.pth of a run)"
            )
        task_cls = TASKS.get(claims[0])
    model = task_cls.predictor_model(cfg, state)
    if model is None:
        assert cfg is not None
        # The stored architecture, without its initial weights (the file's are fitted next):
        # model.weights and a model's backbone_weights (a torchvision file of the training
        # machine, which the deployed checkpoint already contains).
        initial = {k: None for k in ("weights", "backbone_weights") if hasattr(cfg.model, k)}
        bare = dataclasses.replace(cfg, model=replace_section(cfg.model, **initial))
        model = build_model(bare, torch.device("cpu"), **_model_kwargs(task_cls, bare, state))
        fit_state_dict(model, state, str(path))
    return model, cfg, task_cls


def open_predictor(
    path: str | Path,
    device: str = "auto",
    options: dict[str, Any] | None = None,
    only_accepted: bool = False,
) -> tuple[Any, type[Task]]:
    """``(predictor, task class)`` for the weights at ``path``.

    With ``only_accepted``, options the task's predictor does not take
    (:meth:`~pointforge.tasks.base.Task.predictor_options`) are left out instead of refused:
    what a command-line tool with options of several families needs."""
    options = dict(options or {})
    model, cfg, task_cls = load_model(path)
    if only_accepted:
        accepted = set(task_cls.predictor_options())
        options = {k: v for k, v in options.items() if k in accepted}
    return task_cls.build_predictor(model, cfg, device, **options), task_cls


def check_options(factory: Any, options: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Refuse an option ``factory`` does not take with the closest valid name, instead of a
    bare ``TypeError`` ("did you mean 'max_keypoints'?")."""
    known = [p for p in inspect.signature(factory).parameters if p not in skip]
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TypeError(
                f"load_predictor() got an unknown option {name!r}; {hint}options are: "
                + ", ".join(known)
            )


def _model_kwargs(task_cls: Any, cfg: Config, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The task's model arguments for a stored config, without building its datasets when
    the task says how to read them from the weights (``model_kwargs_from_state``)."""
    from_state = getattr(task_cls, "model_kwargs_from_state", None)
    if from_state is not None:
        kwargs: dict[str, Any] = from_state(cfg, state)
        return kwargs
    task = task_cls(cfg, torch.device("cpu"))
    kwargs = task.model_kwargs()
    return kwargs
