"""Tiny on-disk fixtures for the detection readers (written per test under tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def write_image(path: Path, h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
    """A small random BGR image written to ``path`` (format from the suffix); returns it."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return img


def coco_fixture(root: Path, annotations: list[dict[str, Any]] | None = None) -> Path:
    """Three 60x40 PNGs (ids 1..3), two categories (ids 3 'cat', 7 'dog'); returns the json."""
    images = [{"id": i, "file_name": f"img{i}.png", "width": 60, "height": 40} for i in (1, 2, 3)]
    for i in (1, 2, 3):
        write_image(root / "images" / f"img{i}.png", seed=i)
    if annotations is None:
        annotations = [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [5, 6, 20, 10], "area": 150},
            {"id": 11, "image_id": 1, "category_id": 7, "bbox": [30, 0, 30, 40]},
            {"id": 12, "image_id": 2, "category_id": 7, "bbox": [0, 0, 10, 10], "iscrowd": 1},
            {"id": 13, "image_id": 3, "category_id": 3, "bbox": [40, 20, 20.5, 20]},
        ]
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    }
    path = root / "train.json"
    path.write_text(json.dumps(data))
    return path
