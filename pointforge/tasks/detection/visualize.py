"""Drawing detections (what ``pointforge detect`` writes for a CenterNet checkpoint).

Why OpenCV: the input is the BGR uint8 image the predictor got, and the output a BGR picture
that ``cv2.imwrite`` saves; one colour per category id (a fixed golden-ratio hue walk), so the
same class has the same colour in every picture.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def class_colour(category_id: int) -> tuple[int, int, int]:
    """A saturated BGR colour for ``category_id`` (hues spaced by the golden ratio)."""
    hue = int((category_id * 0.618034 % 1.0) * 180)
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray:
    """A copy of ``image`` (grey or BGR uint8) with each box, its class name and score.

    ``prediction``: the detection predictor's dict (``boxes (N, 4)`` xyxy in image pixels,
    ``scores (N,)``, ``labels (N,)`` category ids, ``class_names`` N names).
    """
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(0.35, min(canvas.shape[:2]) / 800)
    thick = max(1, round(scale * 2))
    names = prediction.get("class_names") or [str(int(c)) for c in prediction["labels"]]
    for box, score, cat, name in zip(
        prediction["boxes"], prediction["scores"], prediction["labels"], names
    ):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        colour = class_colour(int(cat))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thick)
        text = f"{name} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - base)
        cv2.rectangle(canvas, (x1, top), (x1 + tw, top + th + base), colour, -1)
        cv2.putText(
            canvas, text, (x1, top + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return canvas
