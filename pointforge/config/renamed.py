"""Renamed config keys: the old name keeps working for a while, with a warning.

Why: one meaning has one key across task families (``docs/config.md``, "Renamed keys"): the
network input size is ``data.image_size`` for keypoints, detection, fusion and re-ID alike,
the evaluation batch is ``data.eval_batch_size`` for every task. Keys that had another name in
one family are still read from user files and from configs stored in older checkpoints; a
file that gives both names with different values is refused, naming both.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pointforge.config.validate import ConfigError

logger = logging.getLogger(__name__)
T = TypeVar("T")


def renamed(old_key: str, old: T | None, new_key: str, new: T | None) -> T | None:
    """The value of ``new_key`` given ``old_key``'s (``None`` = not given).

    ``old`` given: a warning naming ``new_key``; an error naming both when ``new`` is given
    too and differs. Returns ``old`` if given, else ``new``.
    """
    if old is None:
        return new
    logger.warning(
        "config key '%s' is deprecated: use '%s' (docs/config.md, 'Renamed keys')",
        old_key,
        new_key,
    )
    if new is not None and new != old:
        raise ConfigError(
            f"config keys '{old_key}' ({_show(old)}) and '{new_key}' ({_show(new)}) disagree; "
            f"'{old_key}' is the deprecated name of '{new_key}': give only '{new_key}'"
        )
    return old


def _show(value: object) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)
