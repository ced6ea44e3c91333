"""Search spaces from a YAML file: dotted config keys → a distribution.

Format (one entry per config key; each value is a one-key mapping naming the distribution)::

    solver.lr: {loguniform: [1.0e-4, 0.3]}        # log-uniform on [low, high)
    solver.momentum: {uniform: [0.8, 0.99]}      # uniform on [low, high)
    classification.label_smoothing: {choice: [0.0, 0.1]}
    data.batch_size: {randint: [16, 129]}        # integer in [low, high), as Ray's randint

The file is parsed into plain :class:`Param` values (testable without Ray), turned into Ray Tune
samplers by :func:`to_ray`, and a drawn point becomes ``KEY=VALUE`` overrides by
:func:`to_overrides` (values in JSON, which the config loader parses as YAML).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pointforge.config.yaml_io import parse_yaml

KINDS = ("loguniform", "uniform", "choice", "randint")


class SpaceError(ValueError):
    """A search-space file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Param:
    """One searched config key: ``kind`` in :data:`KINDS`; ``args`` are ``(low, high)`` for the
    ranges and the candidate values for ``choice``."""

    key: str
    kind: str
    args: tuple[Any, ...]


def parse_space(data: Any, source: str = "search space") -> list[Param]:
    """Validate a loaded YAML mapping into :class:`Param` values (file order kept)."""
    if not isinstance(data, dict) or not data:
        raise SpaceError(f"{source}: expected a non-empty mapping of config keys to ranges")
    params = []
    for key, spec in data.items():
        where = f"{source}: key '{key}'"
        if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
            raise SpaceError(f"{where}: keys are dotted config keys such as solver.lr")
        if key == "output_dir" or key == "seed":
            raise SpaceError(f"{where}: {key} is set by the sweep, not searched")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise SpaceError(f"{where}: expected one of {{{'|'.join(KINDS)}: [...]}}, got {spec!r}")
        kind, args = next(iter(spec.items()))
        if not isinstance(args, list) or not args:
            raise SpaceError(f"{where}: {kind} takes a non-empty list, got {args!r}")
        if kind == "choice":
            params.append(Param(key, kind, tuple(args)))
            continue
        if len(args) != 2 or not all(_is_number(a) for a in args):
            raise SpaceError(f"{where}: {kind} takes [low, high], got {args!r}")
        low, high = args
        if not low < high:
            raise SpaceError(f"{where}: {kind} needs low < high, got [{low}, {high}]")
        if kind == "loguniform" and low <= 0:
            raise SpaceError(f"{where}: loguniform needs low > 0, got {low}")
        if kind == "randint" and not all(isinstance(a, int) for a in args):
            raise SpaceError(f"{where}: randint takes integers [low, high), got {args!r}")
        params.append(Param(key, kind, (low, high)))
    return params


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def load_space(path: str | Path) -> list[Param]:
    """Read and validate the search-space YAML file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search space file not found: {path}")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise SpaceError(f"{path}: not valid YAML: {exc}") from None
    return parse_space(data, str(path))


def to_ray(params: list[Param]) -> dict[str, Any]:
    """Ray Tune's ``param_space``: ``{dotted key: sampler}``."""
    from pointforge.tune.ray_support import import_tune

    tune = import_tune()
    make = {
        "loguniform": lambda a: tune.loguniform(*a),
        "uniform": lambda a: tune.uniform(*a),
        "randint": lambda a: tune.randint(*a),
        "choice": lambda a: tune.choice(list(a)),
    }
    return {p.key: make[p.kind](p.args) for p in params}


def to_overrides(values: dict[str, Any]) -> list[str]:
    """``KEY=VALUE`` strings for the config loader (``[0.1, 0.2]`` stays a list)."""
    return [f"{key}={_yaml_value(value)}" for key, value in values.items()]


def _yaml_value(value: Any) -> str:
    """JSON, except floats keep a '.' before the exponent: YAML 1.1 (PyYAML) reads ``1e-06``
    as a string and only ``1.0e-06`` as a float."""
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            text = f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}"
        return text
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return json.dumps(value)
