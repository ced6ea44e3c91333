"""Annotation checks and the error/skip policy shared by every detection reader.

Why: a box with zero size, a box far outside its image or a class the dataset never declared
does not crash training; it silently teaches the model wrong targets (and a heatmap peak at a
clipped corner). So readers check every annotation when the dataset is built and either stop
with an error naming the file and the annotation (``on_bad_annotation: error``, the default),
or, when the user asks for ``skip``, drop it, log it and count it in ``dataset.skipped``, with
one summary line at the end. Missing/unreadable images follow ``on_bad_image`` the same way.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

POLICIES = ("error", "skip")
# Boxes may poke out of the image by up to this many pixels and are then clipped to it:
# annotation tools round corners outwards, and VOC's 1-based inclusive corners put a box that
# touches the right edge at x = width. More than that means the box belongs to another image
# size (a resized image, swapped width/height), so it is reported as bad instead.
BOX_TOLERANCE_PX = 1.0


class AnnotationError(ValueError):
    """A bad annotation (or image) under the ``error`` policy; the message names the file and
    the annotation (COCO annotation id, VOC object index, YOLO line number)."""


def check_policy(name: str, value: str) -> str:
    if value not in POLICIES:
        raise ValueError(f"config key 'data.{name}': {value!r} is not one of {POLICIES}")
    return value


def check_box(
    box: tuple[float, float, float, float], width: int, height: int
) -> tuple[np.ndarray | None, str]:
    """Validate an xyxy box in pixels of a ``width``×``height`` image.

    Returns ``(clipped float32 (4,) box, "")`` or ``(None, reason)``. Corners up to
    :data:`BOX_TOLERANCE_PX` outside the image are clipped onto it."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None, f"non-finite coordinates {box}"
    if x1 <= x0 or y1 <= y0:
        return None, f"zero or negative size (xyxy {x0:g}, {y0:g}, {x1:g}, {y1:g})"
    tol = BOX_TOLERANCE_PX
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        return None, (
            f"box xyxy ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {width}x{height} "
            f"image by more than {tol:g} px"
        )
    limits = np.array([width, height, width, height], dtype=np.float32)
    clipped = np.clip(np.array([x0, y0, x1, y1], dtype=np.float32), 0.0, limits)
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, f"box xyxy ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has no area inside the image"
    return clipped, ""


@dataclass
class IssueLog:
    """Applies ``on_bad_annotation`` / ``on_bad_image`` and counts what ``skip`` dropped."""

    dataset: str
    on_bad_annotation: str = "error"
    on_bad_image: str = "error"

    def __post_init__(self) -> None:
        check_policy("on_bad_annotation", self.on_bad_annotation)
        check_policy("on_bad_image", self.on_bad_image)
        self.counts: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()  # non-errors worth a line (crowd boxes, ...)

    def bad_annotation(self, file: str, where: str, reason: str) -> None:
        """Raise :class:`AnnotationError`, or log and count under ``skip``."""
        msg = f"{self.dataset}: bad annotation in {file}, {where}: {reason}"
        if self.on_bad_annotation == "error":
            raise AnnotationError(f"{msg} (set data.on_bad_annotation=skip to drop it)")
        logger.warning("skipping %s", msg)
        self.counts["bad_annotation"] += 1

    def bad_image(self, file: str, reason: str, where: str = "") -> None:
        """Raise :class:`AnnotationError`, or log and count under ``skip``."""
        at = f" ({where})" if where else ""
        msg = f"{self.dataset}: bad image {file}{at}: {reason}"
        if self.on_bad_image == "error":
            raise AnnotationError(f"{msg} (set data.on_bad_image=skip to drop it)")
        logger.warning("skipping %s", msg)
        self.counts["bad_image"] += 1

    def note(self, what: str, n: int = 1) -> None:
        self.notes[what] += n

    def summary(self) -> None:
        """Log the skip counts and notes once (nothing if there is nothing to say)."""
        parts = [f"{n} {k.replace('_', ' ')}(s) skipped" for k, n in sorted(self.counts.items())]
        parts += [f"{n} {k}" for k, n in sorted(self.notes.items())]
        if parts:
            logger.warning("%s: %s", self.dataset, "; ".join(parts))
