from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.visualization import draw_keypoints, make_grid, save_png


def test_draw_and_save_round_trip(tmp_path: Path) -> None:
    img = np.zeros((20, 30), np.uint8)
    out = draw_keypoints(img, np.array([[10.0, 5.0]]), scale=2, ground_truth=np.array([[25, 15]]))
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert tuple(out[11, 21]) == (0, 255, 0)  # keypoint (10, 5) at 2x → pixel (21, 11)
    assert out[..., 2].max() > 0  # red GT circle drawn
    grid = make_grid([out, out, out], cols=2)
    assert grid.shape == (82, 122, 3)
    path = save_png(tmp_path / "sub" / "g.png", grid)
    assert np.array_equal(cv2.imread(str(path)), grid)
    with pytest.raises(ValueError, match="could not write image"):
        save_png(tmp_path / "bad.unknownext", grid)


def test_bad_arguments_are_named() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="cols"):
        make_grid([img], cols=0)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        make_grid([img, np.zeros((5, 10, 3), np.uint8)], cols=2)
    with pytest.raises(ValueError, match="scale"):
        draw_keypoints(img, np.zeros((0, 2)), scale=0)
