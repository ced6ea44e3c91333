"""Drawing helpers for keypoint figures (OpenCV, BGR uint8)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

SHIFT = 4


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image.copy()
    raise ValueError(f"expected (H, W) grey or (H, W, 3) BGR image, got shape {image.shape}")


def draw_keypoints(
    image: np.ndarray,
    keypoints: np.ndarray,
    color: tuple[int, int, int] = (0, 255, 0),
    radius: int = 2,
    scale: int = 1,
    ground_truth: np.ndarray | None = None,
) -> np.ndarray:
    """Circles at ``keypoints`` ``(N, 2)`` (x, y) (sub-pixel); GT ``(K, 2)`` in red.

    Returns ``(H·scale, W·scale, 3)`` uint8 BGR; ``scale`` enlarges small images so points stay
    visible (coordinates are mapped with the pixel-centre convention).
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    out = _bgr(image)
    if scale != 1:
        out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    def fixed(p: np.ndarray) -> np.ndarray:
        centre = (np.asarray(p, np.float64).reshape(-1, 2) + 0.5) * scale - 0.5
        return np.round(centre * (1 << SHIFT)).astype(np.int64)

    r = int(radius * scale * (1 << SHIFT))
    if ground_truth is not None:
        for x, y in fixed(ground_truth):
            cv2.circle(out, (int(x), int(y)), r + (1 << SHIFT), (0, 0, 255), 1, cv2.LINE_AA, SHIFT)
    for x, y in fixed(keypoints):
        cv2.circle(out, (int(x), int(y)), r, color, -1, cv2.LINE_AA, SHIFT)
    return out


def make_grid(images: Sequence[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized BGR panels into rows of ``cols`` with a ``pad``-px white separator."""
    if not images:
        raise ValueError("make_grid: images is empty")
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    h, w = images[0].shape[:2]
    for i, img in enumerate(images):
        if img.shape[:2] != (h, w):
            raise ValueError(f"images[{i}] is {img.shape[:2]}, expected {(h, w)} like images[0]")
    rows = -(-len(images) // cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = _bgr(img)
    return grid


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` to ``path`` (parents created); a failed write raises naming the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok = cv2.imwrite(str(path), image)
    except cv2.error as exc:
        raise ValueError(f"could not write image {path}: {exc.err}") from None
    if not ok:
        raise ValueError(f"could not write image {path}")
    return path
