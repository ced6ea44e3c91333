"""Per-iteration scalar storage shared by the trainer and the writer hooks.

Why a store: the loop, the timer, the LR hook and the evaluator each produce scalars at
different moments; writers read one place instead of each hook knowing every writer.
"""

from __future__ import annotations

import statistics
from collections import defaultdict, deque


class EventStorage:
    """Latest value of each scalar plus a short history for smoothing (median of a window)."""

    def __init__(self, window: int = 20) -> None:
        self.iteration = 0
        self._latest: dict[str, tuple[float, int]] = {}
        self._history: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def put(self, name: str, value: float, smooth: bool = True) -> None:
        value = float(value)
        self._latest[name] = (value, self.iteration)
        if smooth:
            self._history[name].append(value)

    def put_many(self, values: dict[str, float], smooth: bool = True) -> None:
        for k, v in values.items():
            self.put(k, v, smooth)

    def latest(self) -> dict[str, tuple[float, int]]:
        """``name -> (value, iteration it was written at)``."""
        return dict(self._latest)

    def smoothed(self, name: str) -> float | None:
        hist = self._history.get(name)
        if not hist:
            return None
        return statistics.median(hist)
