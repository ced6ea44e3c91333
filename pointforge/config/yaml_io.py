"""YAML as pointforge reads it: numbers as users write them, and no key given twice.

Why a loader of our own: PyYAML implements YAML 1.1, where a float needs a dot and a signed
exponent, so ``5e-4``, ``1e-3`` and ``1E6`` are read as *strings* (YAML 1.2 and JSON read them
as numbers). Every user writes a learning rate that way, so configs, ``KEY=VALUE`` overrides
and search spaces all parse through :class:`ConfigLoader`, which adds the exponent-only form to
the float resolver. Plain integers (``600``) stay ints and quoted text stays text
(``docs/config.md``, "Numbers").

YAML also keeps the last of two equal keys in one mapping silently, so a duplicated section
would lose half of its settings without a word; the loader refuses it, naming both lines.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml


class YAMLKeyError(ValueError):
    """A mapping gives the same key twice; the message names the file and both lines."""


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 exponent floats and duplicate keys refused."""


# Mantissa with or without a dot, then an exponent with an optional sign: 5e-4, 1E6, 2.5e3,
# .5e-2. (Forms with a dot and a signed exponent, 1.0e-3, already are YAML 1.1 floats.)
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789.")
)


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise YAMLKeyError(
                f"duplicate key '{key}' in {key_node.start_mark.name} line {line} "
                f"(first given at line {seen[key]})"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


ConfigLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def parse_yaml(source: str | IO[str]) -> Any:
    """Parse YAML text or a text stream with :class:`ConfigLoader` (raises ``yaml.YAMLError``
    on bad syntax and :class:`YAMLKeyError` on a duplicated key)."""
    return yaml.load(source, Loader=ConfigLoader)
