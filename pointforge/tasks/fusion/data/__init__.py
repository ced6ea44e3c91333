"""Radar-camera data sources sharing the sample dictionary of :mod:`.sample`."""
