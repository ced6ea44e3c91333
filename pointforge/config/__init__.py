"""Typed config: schema, YAML loading with ``_base_``, overrides and validation."""

from pointforge.config.loader import dump_config, load_config
from pointforge.config.schema import Config
from pointforge.config.validate import ConfigError, to_dict

__all__ = ["Config", "ConfigError", "dump_config", "load_config", "to_dict"]
