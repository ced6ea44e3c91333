"""Argument groups shared by subcommands (kept apart from ``main`` so that subcommand modules
can use them without importing ``main``, which imports them)."""

from __future__ import annotations

import argparse


def add_config_args(
    p: argparse.ArgumentParser, example: str = "solver.lr=1e-4 data.batch_size=32"
) -> None:
    """The ``CONFIG [KEY=VALUE ...]`` positionals every config-driven subcommand takes."""
    p.add_argument("config", help="YAML config file (may use _base_ inheritance)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help=f"dotted config overrides, e.g. {example}",
    )
