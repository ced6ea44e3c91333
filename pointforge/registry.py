"""Name → class registries.

Why: configs name components by string (``model.name: magicpoint``); a registry turns that
string into the class or factory, and a typo fails early with the list of valid names and a
"did you mean" instead of a ``KeyError`` deep inside the build.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
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

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("magicpoint")``; the default name is ``obj.__name__``.

        Registering a name twice is an error unless it is the very same object, which
        happens when a module is imported twice (idempotent re-import).
        """

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            existing = self._items.get(key)
            if existing is not None and existing is not obj:
                if _same_definition(existing, obj):
                    # Same class/function re-executed (module reloaded): keep the newest.
                    self._items[key] = obj
                    return obj
                raise RegistryError(
                    f"{self.kind} registry: name '{key}' is already registered to "
                    f"{_qualname(existing)}; cannot register {_qualname(obj)} under it"
                )
            self._items[key] = obj
            return obj

        return deco

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
LOSSES = Registry("loss")
EVALUATORS = Registry("evaluator")
HOOKS = Registry("hook")
