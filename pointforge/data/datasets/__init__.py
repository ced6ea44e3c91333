"""Datasets shared by task families. Each module registers its dataset (with its ``data.*``
keys) when imported; the families import the ones they use (``pointforge.registry.load_builtin``
imports every family)."""
