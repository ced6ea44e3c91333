"""Turn a plain nested dict into a validated, frozen schema instance.

Why a hand-written validator instead of a library: the rules we need are few and strict (unknown
key → "did you mean", a string is never a list, an int is accepted where a float is expected and
nothing else is coerced) and each error must name the full dotted key.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from pointforge.registry import did_you_mean

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that cannot be used: unknown key, wrong type, bad value or missing file."""


def need(cond: bool, key: str, msg: str) -> None:
    """Raise ``ConfigError("config key '<key>' <msg>")`` unless ``cond``: value checks that the
    type system cannot express (engine, task and dataset checks all use it)."""
    if not cond:
        raise ConfigError(f"config key '{key}' {msg}")


def from_dict(schema: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build ``schema`` (a dataclass) from ``data``, checking every key and type.

    Missing keys take the schema default. Sequences become tuples so the result is immutable.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"config section '{prefix or '<root>'}' must be a mapping, got {_tn(data)}"
        )
    hints = get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            full = f"{prefix}{key}"
            known = [f"{prefix}{k}" for k in fields]
            raise ConfigError(
                f"unknown config key '{full}'.{did_you_mean(full, known)} "
                f"Valid keys here: {', '.join(known)}"
            )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        choices = f.metadata.get("choices")
        raw = data[name]
        # YAML 1.1 reads a bare `off` / `on` as false / true: `train.amp=off` means the choice.
        if isinstance(raw, bool) and choices is not None and ("on" if raw else "off") in choices:
            raw = "on" if raw else "off"
        value = _convert(raw, hints[name], f"{prefix}{name}")
        if choices is not None and value not in choices:
            raise ConfigError(
                f"config key '{prefix}{name}' must be one of {list(choices)}, got {value!r}."
                f"{did_you_mean(str(value), list(choices))}"
            )
        kwargs[name] = value
    return schema(**kwargs)


def _tn(value: Any) -> str:
    return type(value).__name__


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"list of {_describe(args[0])}" if args else "list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return the (immutable) converted value."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"config key '{key}' expects {_describe(tp)}, got null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(
            f"config key '{key}' expects {_describe(tp)}, got {_tn(value)} ({value!r})"
        )
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            # Never take a string (or a scalar) for a list: "abc" is not ["a", "b", "c"].
            raise ConfigError(
                f"config key '{key}' expects {_describe(tp)}, got {_tn(value)} ({value!r})"
            )
        items = [a for a in get_args(tp) if a is not Ellipsis]
        item_tp = items[0] if items else Any
        return tuple(_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config key '{key}' expects {_describe(tp)}, got {_tn(value)} ({value!r})")


def to_dict(obj: Any) -> Any:
    """Schema instance → plain YAML-friendly dict (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj
