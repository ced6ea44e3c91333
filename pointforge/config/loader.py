"""Load a config: schema defaults ← YAML (with ``_base_``) ← ``KEY=VALUE`` overrides.

The result is validated and frozen before any work starts (see :mod:`.validate`), and
"None means inherit" defaults are resolved once here, not scattered through the code.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Any

import torch.multiprocessing
import yaml

from pointforge.config.budget import resolve_budget
from pointforge.config.compose import run_schema
from pointforge.config.schema import Config
from pointforge.config.switch import drop_switched_dataset_keys
from pointforge.config.validate import ConfigError, from_dict, need, to_dict
from pointforge.config.yaml_io import YAMLKeyError, parse_yaml

MAX_BASE_DEPTH = 16


def load_yaml(path: str | Path, _depth: int = 0, _named_by: Path | None = None) -> dict[str, Any]:
    """Read a YAML config, merging its ``_base_`` file(s) (paths relative to the file) first.

    Errors name the file (and for ``_base_`` the config that names it); an empty file or a
    duplicated key is refused rather than read as defaults.
    """
    path = Path(path)
    if not path.is_file():
        where = f" (named as _base_ by {_named_by})" if _named_by is not None else ""
        raise ConfigError(f"config file not found: {path}{where}")
    if _depth > MAX_BASE_DEPTH:
        raise ConfigError(f"_base_ chain deeper than {MAX_BASE_DEPTH} at {path} (a cycle?)")
    try:
        with path.open() as f:
            data = parse_yaml(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse YAML config {path}: {exc}") from None
    except YAMLKeyError as exc:
        raise ConfigError(str(exc)) from None
    if data is None:
        raise ConfigError(f"config file {path} is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    merged: dict[str, Any] = {}
    for base in bases:
        merged = merge(merged, load_yaml(path.parent / base, _depth + 1, path))
    return merge(merged, data)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins. Mappings merge, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings; values are parsed as YAML the way config files are
    (:mod:`.yaml_io`: ``lr=5e-4`` is a float, ``steps=[1,2]`` a list, ``name=abc`` a string).

    Unknown keys are caught later by the validator, which names the closest valid key.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' must look like KEY=VALUE (e.g. solver.lr=1e-4)")
        try:
            value = parse_yaml(raw) if raw.strip() else None
        except (yaml.YAMLError, YAMLKeyError):
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return out


def resolve(cfg: Config, config_path: str | Path | None = None) -> Config:
    """Fill "None means inherit" defaults, once, so the frozen config is explicit."""
    data = cfg.data
    if data.num_workers is None:
        data = dataclasses.replace(data, num_workers=os.cpu_count() or 1)
    out_dir = cfg.output_dir
    if out_dir is None:
        stem = Path(config_path).stem if config_path else "default"
        out_dir = str(Path("runs") / stem)
    cfg = dataclasses.replace(cfg, data=data, output_dir=out_dir)
    check_values(cfg)
    cfg = dataclasses.replace(cfg, solver=resolve_budget(cfg.solver))
    from pointforge.registry import TASKS

    return TASKS.get(str(cfg.task)).resolve_config(cfg)


def check_values(cfg: Config) -> None:
    """Value checks the type system cannot express; each error names its key."""

    need(cfg.data.batch_size > 0, "data.batch_size", "must be > 0")
    need((cfg.data.num_workers or 0) >= 0, "data.num_workers", "must be >= 0")
    strategies = sorted(torch.multiprocessing.get_all_sharing_strategies())
    need(
        cfg.data.sharing_strategy in (None, *strategies),
        "data.sharing_strategy",
        f"must be null or one of {strategies} (this platform's sharing strategies), got "
        f"{cfg.data.sharing_strategy!r}",
    )
    need(cfg.solver.lr > 0, "solver.lr", "must be > 0")
    need(cfg.solver.max_iter > 0, "solver.max_iter", "must be > 0")
    need(
        cfg.solver.reference_batch_size is None or cfg.solver.reference_batch_size > 0,
        "solver.reference_batch_size",
        "must be > 0 or null",
    )
    need(
        not (cfg.train.ddp.backend == "nccl" and cfg.device == "cpu"),
        "train.ddp.backend",
        "is nccl, which needs CUDA, but device=cpu; use gloo or auto",
    )
    need(cfg.train.checkpoint_period > 0, "train.checkpoint_period", "must be > 0")
    need(cfg.train.keep_last >= 0, "train.keep_last", "must be >= 0")
    need(cfg.train.eval_period >= 0, "train.eval_period", "must be >= 0 (0 disables)")
    need(cfg.train.patience >= 0, "train.patience", "must be >= 0 (0 = never stop early)")
    need(
        cfg.train.patience == 0 or cfg.train.best_metric is not None,
        "train.patience",
        "needs train.best_metric: the metric whose improvement it waits for",
    )
    need(
        cfg.train.patience == 0 or cfg.train.eval_period > 0,
        "train.patience",
        "needs periodic evaluations (train.eval_period > 0) to count",
    )
    _check_solver_features(cfg)
    need(
        cfg.device in ("auto", "cpu") or cfg.device.startswith("cuda"),
        "device",
        f"must be auto, cpu or cuda[:N], got {cfg.device!r}",
    )
    check_regexes("model.load.reinit_mismatched", cfg.model.load.reinit_mismatched)


def check_regexes(key: str, patterns: tuple[str, ...]) -> None:
    """Every entry of a list-of-regexes key must compile; the error names ``key[i]``."""
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            need(False, f"{key}[{i}]", f"is not a valid regex ({pattern!r}: {exc})")


def _check_solver_features(cfg: Config) -> None:
    """Checks of the optional training features (accumulation, clipping, EMA, PreciseBN...)."""
    s, t = cfg.solver, cfg.train
    need(s.accumulate_steps >= 1, "solver.accumulate_steps", "must be >= 1")
    for key, value in (
        ("solver.clip_grad_norm", s.clip_grad_norm),
        ("solver.clip_grad_value", s.clip_grad_value),
    ):
        need(value is None or value > 0, key, f"must be > 0 or null, got {value}")
    for key, value in (
        ("solver.weight_decay", s.weight_decay),
        ("solver.weight_decay_norm", s.weight_decay_norm),
        ("solver.weight_decay_bias", s.weight_decay_bias),
    ):
        need(value is None or value >= 0, key, f"must be >= 0, got {value}")
    need(0.0 < t.ema.decay < 1.0, "train.ema.decay", f"must be in (0, 1), got {t.ema.decay}")
    need(t.ema.tau > 0, "train.ema.tau", f"must be > 0, got {t.ema.tau}")
    need(t.precise_bn.num_iter > 0, "train.precise_bn.num_iter", "must be > 0")
    check_regexes("model.freeze", cfg.model.freeze)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """The one entry point: defaults ← YAML ← overrides → validated, resolved, frozen."""
    data = load_yaml(path) if path is not None else {}
    merged = apply_overrides(data, overrides or [])
    merged = drop_switched_dataset_keys(data, merged, overrides or [], path)  # config/switch.py
    return build_config(merged, path)


def build_config(
    data: dict[str, Any], config_path: str | Path | None = None, lenient: bool = False
) -> Config:
    """A plain dict → the run's validated, resolved config.

    Order: load the plugins named in ``imports`` (and the built-in families), find the task and
    its dataset and model (``data.name`` / ``model.name``, defaulting to the task's), compose
    the run's schema from the three, validate strictly, resolve "None means inherit" defaults,
    then run the engine's and the task's value checks.

    ``lenient=True`` is for configs stored by older versions (checkpoints, run folders): keys
    the schema no longer has are dropped instead of refused. Never for a user's config.
    """
    from pointforge.registry import DATASETS, MODELS, TASKS, RegistryError, load_plugins

    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
    imports = _convert_imports(data.get("imports", ()))
    base_dir = Path(config_path).parent if config_path is not None else None
    try:
        load_plugins(imports, base_dir)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    task = data.get("task")
    if task is None:
        raise ConfigError(
            f"config key 'task' is required (registered tasks: {', '.join(TASKS.names())})"
        )
    task_cls = _lookup(TASKS, "task", task)
    names = {}
    for section, registry, default in (
        ("data", DATASETS, getattr(task_cls, "default_dataset", None)),
        ("model", MODELS, getattr(task_cls, "default_model", None)),
    ):
        node = data.get(section)
        name = node.get("name") if isinstance(node, dict) else None
        name = default if name is None else name
        if name is not None:
            _lookup(registry, f"{section}.name", name)
        names[section] = name
    schema = run_schema(str(task), names["data"], names["model"])
    if lenient:
        data = _drop_unknown(schema, data)
    cfg = from_dict(schema, data)
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, name=names["data"]),
        model=dataclasses.replace(cfg.model, name=names["model"]),
    )
    cfg = resolve(cfg, config_path)
    task_cls.check_config(cfg)
    return cfg


def _lookup(registry: Any, key: str, name: Any) -> Any:
    from pointforge.registry import RegistryError

    if not isinstance(name, str):
        raise ConfigError(f"config key '{key}' expects str, got {type(name).__name__} ({name!r})")
    try:
        return registry.get(name)
    except RegistryError as exc:
        raise ConfigError(f"config key '{key}': {exc}") from None


def _convert_imports(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"config key 'imports' expects list of str, got {value!r}")


def _drop_unknown(schema: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the keys ``schema`` does not have, recursively (lenient loading)."""
    hints = typing.get_type_hints(schema)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            continue
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            value = _drop_unknown(hints[key], value)
        out[key] = value
    return out


def config_from_stored(stored: dict[str, Any]) -> Config:
    """The config a checkpoint or run folder stored (``to_dict`` of it), re-validated leniently,
    so runs and weights made by older versions (whose configs held every task's sections)
    still load. ``output_dir`` and ``device`` are kept as stored."""
    return build_config(dict(stored), None, lenient=True)


def dump_config(cfg: Config) -> str:
    """YAML text of a resolved config (what gets written to ``output_dir/config.yaml``)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
