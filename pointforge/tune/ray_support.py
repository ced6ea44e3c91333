"""Ray is an optional extra: import it in one place, with one line saying what to install."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pointforge tune needs Ray Tune: pip install 'pointforge[ray]' (ray[tune]>=2.9)"


class RayMissingError(RuntimeError):
    """Ray Tune is not installed; the message is the one line the CLI prints."""


def import_tune() -> ModuleType:
    """``ray.tune``, or :class:`RayMissingError` naming the extra to install."""
    try:
        import ray.tune as tune
    except ImportError:
        raise RayMissingError(INSTALL_HINT) from None
    return tune
