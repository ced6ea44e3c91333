"""Name → class registries.

Why: configs name components by string (``model.name: magicpoint``); a registry turns that
string into the class or factory, and a typo fails early with the list of valid names and a
"did you mean" instead of a ``KeyError`` deep inside the build.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """Unknown or duplicate registry name. ``str()`` gives a readable one-line message."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""`` if none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry:
    """A mapping from names to objects (classes or factory functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._params: dict[str, type | None] = {}

    def register(self, name: str | None = None, *, params: type | None = None) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("magicpoint")``; the default name is ``obj.__name__``.

        ``params`` is the frozen dataclass of the config keys this entry owns: a dataset's
        keys under ``data.``, a model's under ``model.``. The config of a run is composed from
        the entries it names (see ``docs/config.md``), so a run only shows, and only accepts,
        the keys of its own components. Tasks declare theirs as the class attribute
        ``options`` instead (one dataclass whose fields are top-level sections).

        Registering a name twice is an error unless it is the very same object, which
        happens when a module is imported twice (idempotent re-import).
        """

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            existing = self._items.get(key)
            # The same class/function re-executed (module reloaded) replaces itself.
            if existing is not None and existing is not obj and not _same_definition(existing, obj):
                raise RegistryError(
                    f"{self.kind} registry: name '{key}' is already registered to "
                    f"{_qualname(existing)}; cannot register {_qualname(obj)} under it"
                )
            self._items[key] = obj
            self._params[key] = params
            return obj

        return deco

    def params(self, name: str) -> type | None:
        """The params dataclass registered with ``name`` (``None``: it owns no keys)."""
        self.get(name)  # the same error as get() for an unknown name
        return self._params.get(name)

    def get(self, name: str) -> Any:
        """Look up ``name``; an unknown name lists the registered names with a suggestion."""
        try:
            return self._items[name]
        except KeyError:
            names = sorted(self._items)
            raise RegistryError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, names)} "
                f"Registered {self.kind}s: {', '.join(names) or '(none)'}"
            ) from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Look up ``name`` and call it with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _same_definition(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are the same source definition executed twice."""
    return _qualname(a) == _qualname(b) and getattr(a, "__module__", None) is not None


MODELS = Registry("model")
DATASETS = Registry("dataset")
TASKS = Registry("task")
# Hooks a config adds by name (``train.hooks: [name, ...]``); each entry is called with the
# run's Trainer and returns a HookBase. Plugins register theirs here.
HOOKS = Registry("hook")

# Python entry-point group through which installed packages register components.
ENTRY_POINT_GROUP = "pointforge.plugins"
_loaded_builtin = False
_loaded_plugins: dict[str, ModuleType] = {}


def load_builtin() -> None:
    """Import every task family under ``pointforge/tasks/`` (each registers itself), and the
    installed packages' ``pointforge.plugins`` entry points. Idempotent.

    Why discovery: a family is a folder; adding one must not mean editing a list elsewhere.
    """
    global _loaded_builtin
    if _loaded_builtin:
        return
    import pointforge.tasks as families

    for info in sorted(pkgutil.iter_modules(families.__path__), key=lambda m: m.name):
        if info.ispkg:
            importlib.import_module(f"{families.__name__}.{info.name}")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise RegistryError(
                f"plugin entry point '{ep.name}' ({ep.value}) of group {ENTRY_POINT_GROUP} "
                f"failed to import: {type(exc).__name__}: {exc}"
            ) from exc
    _loaded_builtin = True


def load_plugins(imports: Sequence[str], base_dir: str | Path | None = None) -> None:
    """Import user modules that register tasks, datasets, models or hooks.

    Each entry is a module name (``my_project.tasks``, importable from ``sys.path``) or a path to
    a ``.py`` file (relative paths are tried against ``base_dir``, the config file's folder,
    then the working directory). The config key ``imports:`` lists them; this is what
    detectron2 users do with a ``register_*`` call in their own script, as a config line.
    """
    load_builtin()
    for entry in imports:
        if entry in _loaded_plugins:
            continue
        if entry.endswith(".py") or "/" in entry or os.sep in entry:
            _loaded_plugins[entry] = _import_file(entry, base_dir)
            continue
        try:
            _loaded_plugins[entry] = importlib.import_module(entry)
        except ImportError as exc:
            raise RegistryError(
                f"config key 'imports': cannot import module '{entry}': {exc}"
            ) from exc


def _import_file(entry: str, base_dir: str | Path | None) -> ModuleType:
    candidates = [Path(entry)] if Path(entry).is_absolute() else []
    if not candidates:
        candidates = [Path(base_dir) / entry] if base_dir is not None else []
        candidates.append(Path.cwd() / entry)
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        tried = ", ".join(str(c) for c in candidates)
        raise RegistryError(
            f"config key 'imports': plugin file '{entry}' not found (tried {tried})"
        )
    path = path.resolve()
    # A stable module name per file, so importing it twice (config + checkpoint) is one module.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"pointforge_plugin_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"config key 'imports': cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module
