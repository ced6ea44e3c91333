"""Switching ``data.name`` on the command line: the file's dataset keys the new one lacks.

Why: a dataset declares its own ``data.*`` keys (``docs/config.md``), so a config file written
for one dataset holds keys another does not have (``configs/eval_homography.yaml`` sets
``data.homographic`` for its generated pairs; ``hpatches`` reads fixed image pairs and has no
such key). ``KEY=VALUE`` overrides are applied on top of the file, so
``data.name=hpatches`` would otherwise leave those keys behind and the strict validator would
refuse the run with "unknown config key 'data.homographic'", although the user typed nothing
wrong.

The rule (``docs/config.md``, "Switching the dataset"): when ``data.name`` is given on the
command line and differs from the dataset of the file, the top-level ``data.*`` keys that came
from the file and that the new dataset does not declare are dropped, with one warning naming
them. A key given on the command line is never dropped, so a typo there still fails, and
nothing is dropped when the new dataset name is unknown (the validator then names it).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _override_keys(overrides: list[str]) -> set[str]:
    """Dotted keys set by ``KEY=VALUE`` strings, stripped."""
    return {item.partition("=")[0].strip() for item in overrides if "=" in item}


def _dataset_keys(task: Any, name: Any, imports: Any, base_dir: Path | None) -> set[str] | None:
    """``data.*`` keys (top level) of dataset ``name``; None when it cannot be known."""
    from pointforge.config.schema import DataConfig
    from pointforge.registry import DATASETS, RegistryError, load_plugins

    if not isinstance(name, str):
        return None
    try:
        load_plugins(tuple(imports) if isinstance(imports, list | tuple) else (), base_dir)
        params = DATASETS.params(name)
    except (RegistryError, TypeError, ValueError):
        return None
    keys = {f.name for f in dataclasses.fields(DataConfig)}
    if params is not None:
        keys |= {f.name for f in dataclasses.fields(params)}
    return keys


def _file_dataset(file_data: dict[str, Any], task: Any) -> Any:
    """The dataset the file uses: its ``data.name``, else the default of its task."""
    from pointforge.registry import TASKS, RegistryError

    node = file_data.get("data")
    name = node.get("name") if isinstance(node, dict) else None
    if name is not None or not isinstance(task, str):
        return name
    try:
        return getattr(TASKS.get(task), "default_dataset", None)
    except RegistryError:
        return None


def drop_switched_dataset_keys(
    file_data: dict[str, Any],
    data: dict[str, Any],
    overrides: list[str],
    config_path: str | Path | None = None,
) -> dict[str, Any]:
    """``data`` (the file merged with ``overrides``) without the file's ``data.*`` keys that
    a ``data.name`` switched on the command line does not declare (see the module docstring).

    ``file_data`` is the file as read (``_base_`` merged), before the overrides. Returns
    ``data`` itself when nothing is dropped, else a copy; logs one warning naming the keys.
    """
    given = _override_keys(overrides)
    section = data.get("data")
    if "data.name" not in given or not isinstance(section, dict):
        return data
    old, new = _file_dataset(file_data, data.get("task")), section.get("name")
    if old is None or old == new:
        return data
    base_dir = Path(config_path).parent if config_path is not None else None
    keys = _dataset_keys(data.get("task"), new, data.get("imports", ()), base_dir)
    file_section = file_data.get("data")
    if keys is None or not isinstance(file_section, dict):
        return data
    drop = [
        k
        for k in file_section
        if k not in keys
        and f"data.{k}" not in given
        and not any(g.startswith(f"data.{k}.") for g in given)
    ]
    if not drop:
        return data
    where = f" of {config_path}" if config_path is not None else ""
    logger.warning(
        "data.name=%s (command line) replaces dataset '%s'%s; its keys %s, which '%s' does "
        "not have, are dropped",
        new,
        old,
        where,
        ", ".join(f"data.{k}" for k in drop),
        new,
    )
    return {**data, "data": {k: v for k, v in section.items() if k not in drop}}
