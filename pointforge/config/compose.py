"""Compose the config class of one run from its task, dataset and model.

Why: the engine's :class:`~pointforge.config.schema.Config` holds only what every run has. A
task declares its own top-level sections (``Task.options``, a dataclass whose fields are the
sections), a dataset its keys under ``data.`` and a model its keys under ``model.`` (the
``params`` given to ``register``). The run's class is the core class extended with exactly
those fields, so validation stays strict ("did you mean" over the keys this run really has),
``pointforge config`` and ``config.yaml`` show only the sections the run uses, and adding a
task family never edits a central schema. See ``docs/config.md``.

Composed classes are cached per (task, dataset, model) and published as attributes of this
module under their names, so that instances pickle (DataLoader workers, spawned ranks).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import TYPE_CHECKING, Any, TypeVar

from pointforge.config.schema import Config, DataConfig, ModelConfig
from pointforge.config.validate import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_DC = TypeVar("_DC", bound="DataclassInstance")
_CACHE: dict[str, type] = {}
_NAME = re.compile(r"^(Config|DataConfig|ModelConfig)\[(.*)\]$")


def _fields_of(params: type | None) -> list[tuple[str, Any, dataclasses.Field[Any]]]:
    """``(name, resolved type, field)`` of a params dataclass, ready for ``make_dataclass``."""
    if params is None:
        return []
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"{params!r} is not a dataclass; config params must be dataclasses")
    hints = typing.get_type_hints(params)
    out = []
    for f in dataclasses.fields(params):
        # field() is typed for class bodies (it claims to return the default's type); here it
        # is a Field object handed to make_dataclass.
        new = typing.cast(
            dataclasses.Field[Any],
            dataclasses.field(
                default=f.default,
                default_factory=f.default_factory,
                metadata=f.metadata,
            ),
        )
        out.append((f.name, hints[f.name], new))
    return out


def _extend(base: type, name: str, params: type | None, owner: str) -> type:
    """``base`` plus the fields of ``params``; a field that shadows a base key is an error."""
    if name in _CACHE:
        return _CACHE[name]
    extra = _fields_of(params)
    taken = {f.name for f in dataclasses.fields(base)}
    clash = sorted(n for n, _, _ in extra if n in taken)
    if clash:
        raise ConfigError(f"{owner} declares config keys {clash} that the engine already owns")
    cls = dataclasses.make_dataclass(name, extra, bases=(base,), frozen=True)
    cls.__module__ = __name__
    cls.__qualname__ = name
    cls.__doc__ = (params.__doc__ if params is not None else None) or base.__doc__
    _CACHE[name] = cls
    return cls


def data_schema(dataset: str | None) -> type:
    """``DataConfig`` with the keys of dataset ``dataset`` (registered ``params``)."""
    from pointforge.registry import DATASETS

    params = DATASETS.params(dataset) if dataset is not None else None
    return _extend(DataConfig, f"DataConfig[{dataset}]", params, f"dataset '{dataset}'")


def model_schema(model: str | None) -> type:
    """``ModelConfig`` with the keys of model ``model`` (registered ``params``)."""
    from pointforge.registry import MODELS

    params = MODELS.params(model) if model is not None else None
    return _extend(ModelConfig, f"ModelConfig[{model}]", params, f"model '{model}'")


def run_schema(task: str, dataset: str | None, model: str | None) -> type[Config]:
    """The config class of a run of ``task`` on ``dataset`` with ``model``."""
    from pointforge.registry import TASKS

    name = f"Config[{task},{dataset},{model}]"
    if name in _CACHE:
        return _CACHE[name]
    task_cls = TASKS.get(task)
    sections = _fields_of(getattr(task_cls, "options", None))
    taken = {f.name for f in dataclasses.fields(Config)}
    clash = sorted(n for n, _, _ in sections if n in taken)
    if clash:
        raise ConfigError(f"task '{task}' declares sections {clash} that the engine owns")
    data_cls, model_cls = data_schema(dataset), model_schema(model)
    fields = [
        *sections,
        ("data", data_cls, dataclasses.field(default_factory=data_cls)),
        ("model", model_cls, dataclasses.field(default_factory=model_cls)),
    ]
    cls = dataclasses.make_dataclass(name, fields, bases=(Config,), frozen=True)
    cls.__module__ = __name__
    cls.__qualname__ = name
    cls.__doc__ = Config.__doc__
    _CACHE[name] = cls
    return cls


def __getattr__(name: str) -> type:
    """Re-create a composed class by name (unpickling in a process that has not built it)."""
    match = _NAME.match(name)
    if match is None:
        raise AttributeError(name)
    from pointforge.registry import load_builtin

    load_builtin()
    kind, args = match.group(1), match.group(2)
    parts = [None if a == "None" else a for a in args.split(",")]
    if kind == "Config":
        return run_schema(str(parts[0]), parts[1], parts[2])
    return data_schema(parts[0]) if kind == "DataConfig" else model_schema(parts[0])


def own_keys(section: Any) -> dict[str, Any]:
    """The keys a component added to a core section, by name: ``own_keys(cfg.data)`` is the
    dataset's parameters, ``own_keys(cfg.model)`` the model's (as factory kwargs)."""
    core = next((c for c in (DataConfig, ModelConfig, Config) if isinstance(section, c)), None)
    if core is None:
        raise TypeError(f"{type(section).__name__} is not a composed config section")
    taken = {f.name for f in dataclasses.fields(core)}
    return {
        f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name not in taken
    }


def replace_section(obj: _DC, **changes: Any) -> _DC:
    """``dataclasses.replace`` for keys that composition adds at runtime.

    Why: a run's config class is built by :func:`run_schema` (task sections, dataset and model
    keys), so the type checker only knows the core classes and rejects
    ``replace(cfg, eval=...)`` or ``replace(cfg.data, photometric=...)``. The copy is checked
    at runtime as usual: an unknown key raises ``TypeError``.
    """
    return dataclasses.replace(obj, **changes)
