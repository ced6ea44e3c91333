"""Seeded, stratified train/val hold-out splits for datasets without a fixed split.

Why our own few lines instead of ``sklearn.model_selection.train_test_split(stratify=...)``:
that one needs the whole validation set to hold at least one sample per class and fails on
classes with one sample; here each class is split on its own, so every class with two or more
samples lands in both splits and the sizes are predictable (``round(n_c * val_fraction)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val")


def stratified_split(
    labels: Sequence[int] | np.ndarray, split: str, val_fraction: float, seed: int
) -> np.ndarray:
    """Sorted indices of ``split`` ("train" or "val") in a per-class hold-out of ``labels``.

    For each class with ``n_c`` samples, ``max(1, round(n_c * val_fraction))`` of them (a
    random choice seeded by ``(seed, class)``) are held out for "val"; a class with a single
    sample stays in "train". The two splits are disjoint, cover every index, and depend only on
    ``(labels, val_fraction, seed)``.

    ``labels``: ``(N,)`` integer class ids. Returns ``(M,)`` int64 indices.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    is_val = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < 2:
            continue
        n_val = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        rng = np.random.default_rng([seed, int(cls)])
        is_val[rng.choice(members, size=n_val, replace=False)] = True
    return np.flatnonzero(is_val if split == "val" else ~is_val).astype(np.int64)
