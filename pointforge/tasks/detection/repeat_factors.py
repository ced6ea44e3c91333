"""Per-image repeat factors for rare detection classes (``data.repeat_threshold``).

Why: on a long-tailed set (LVIS, or a custom one where one class is in a handful of photos) a
uniform stream shows the rare classes so seldom that their heatmap channels barely train.
LVIS's repeat factor sampling (Gupta et al. 2019) oversamples the images that hold them:

* ``f_c``: the fraction of training images holding at least one (trained-on) box of class c;
* ``r_c = max(1, sqrt(t / f_c))``: classes in fewer than a fraction ``t`` of the images repeat;
* ``r_i = max(r_c for c in image i)``, and ``r_i = 1`` for an image without boxes.

The factors feed :class:`pointforge.data.repeat_factor.RepeatFactorSampler`, which realises them
per epoch and keeps the stream resumable (``docs/detection.md``, "Rare classes").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.tasks.detection.data.base import DetectionDataset

KEY = "data.repeat_threshold"
RAREST_SHOWN = 5  # classes listed in the build log


@dataclass(frozen=True)
class RepeatFactors:
    """``image``: ``(N,)`` float64 ``r_i``; ``class_freq`` / ``class_factor``: ``(C,)`` float64
    ``f_c`` and ``r_c`` (``r_c`` is NaN for a class no image holds)."""

    threshold: float
    image: np.ndarray
    class_freq: np.ndarray
    class_factor: np.ndarray


def threshold_of(cfg: Config) -> float | None:
    """``data.repeat_threshold`` (a key of every detection dataset; absent elsewhere)."""
    value = getattr(cfg.data, "repeat_threshold", None)
    return None if value is None else float(value)


def check_repeat_threshold(cfg: Config) -> None:
    """``data.repeat_threshold`` is null or in (0, 1]: ``t`` is a fraction of the images, and
    ``t > 1`` would repeat even a class present in every image."""
    t = threshold_of(cfg)
    need(
        t is None or (math.isfinite(t) and 0.0 < t <= 1.0),
        KEY,
        f"must be null (off) or in (0, 1] (a fraction of the training images), got {t}",
    )


def repeat_factors(
    image_labels: Sequence[np.ndarray], num_classes: int, threshold: float
) -> RepeatFactors:
    """The factors of images whose trained-on boxes have class indices ``image_labels[i]``
    (int ``(K_i,)``, each in ``[0, num_classes)``; K_i may be 0)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"config key '{KEY}' must be in (0, 1], got {threshold}")
    n = len(image_labels)
    present = [np.unique(np.asarray(lab, dtype=np.int64)) for lab in image_labels]
    counts = np.zeros(num_classes, dtype=np.int64)
    for i, classes in enumerate(present):
        bad = classes[(classes < 0) | (classes >= num_classes)]
        if bad.size:
            raise ValueError(f"image {i} has class index {int(bad[0])} outside [0, {num_classes})")
        counts[classes] += 1
    freq = counts / max(n, 1)
    with np.errstate(divide="ignore"):
        factor = np.maximum(1.0, np.sqrt(threshold / freq))
    factor[counts == 0] = np.nan
    image = np.array([factor[c].max() if c.size else 1.0 for c in present], dtype=np.float64)
    return RepeatFactors(threshold, image, freq, factor)


def dataset_repeat_factors(dataset: DetectionDataset, threshold: float) -> RepeatFactors:
    """:func:`repeat_factors` of a detection dataset's records (crowd / difficult boxes, which
    are not trained on, do not count). The shapes set renders every image once for this."""
    labels = [rec.labels for rec in dataset.records]
    return repeat_factors(labels, dataset.num_classes, threshold)


def summary(factors: RepeatFactors, class_names: Sequence[str], batch_size: int) -> str:
    """One log line: the threshold, how many images repeat, the mean epoch length, and the
    rarest classes' ``f_c`` / ``r_c``."""
    r = factors.image
    epoch = float(r.sum())
    repeated = int((r > 1.0).sum())
    held = np.flatnonzero(~np.isnan(factors.class_factor))
    rarest = held[np.argsort(factors.class_freq[held], kind="stable")][:RAREST_SHOWN]
    shown = ", ".join(
        f"{class_names[c]} f={factors.class_freq[c]:.4g} r={factors.class_factor[c]:.3g}"
        for c in rarest
    )
    absent = len(class_names) - held.size
    tail = f"; {absent} class(es) in no training image" if absent else ""
    return (
        f"repeat-factor sampling ({KEY}={factors.threshold:g}): {repeated} of {r.size} "
        f"training images repeat (max r={r.max():.3g}); an epoch is ~{epoch:.1f} draws "
        f"({epoch / r.size:.3f}x the images, ~{epoch / batch_size:.1f} batches of "
        f"{batch_size}); rarest classes: {shown}{tail}"
    )
