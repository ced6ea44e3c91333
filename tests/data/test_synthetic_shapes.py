from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.ndimage import maximum_filter

from pointforge.data.datasets.synthetic_shapes import SyntheticShapes, warp_sample
from pointforge.data.shapes.dump import dump_shapes
from pointforge.data.shapes.primitives import PRIMITIVES, draw_polygon
from pointforge.data.shapes.render import render_shapes
from pointforge.data.transforms.photometric import PhotometricConfig
from pointforge.geometry.homography import HomographyConfig, sample_homography, warp_points

CORNER_PRIMITIVES = ["polygon", "multiple_polygons", "star", "checkerboard", "stripes", "cube"]


def test_samples_are_pure_functions_of_seed_split_index() -> None:
    a = SyntheticShapes("train", photometric=PhotometricConfig(), homographic=HomographyConfig())
    b = SyntheticShapes("train", photometric=PhotometricConfig(), homographic=HomographyConfig())
    for i in (5, 0, 77):  # any order
        x, y = a[i], b[i]
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["points"], y["points"])
    assert not torch.equal(a[1]["image"], a[2]["image"])
    imgs = [SyntheticShapes(s, size=10).raw(3)[0] for s in ("train", "val", "test")]
    assert not np.array_equal(imgs[0], imgs[1]) and not np.array_equal(imgs[1], imgs[2])
    assert len(SyntheticShapes("test")) == 1000
    with pytest.raises(ValueError, match="unknown split 'tset'"):
        SyntheticShapes("tset")
    with pytest.raises(ValueError, match="primitive"):
        SyntheticShapes("test", primitives=["hexagon"])


def test_output_format() -> None:
    s = SyntheticShapes("train", homographic=HomographyConfig())[4]
    assert s["image"].shape == (1, 120, 160) and s["image"].dtype == torch.float32
    assert s["image"].min() >= 0 and s["image"].max() <= 1
    assert s["points"].ndim == 2 and s["points"].shape[1] == 2
    assert s["valid_mask"].shape == (1, 120, 160)
    assert set(PRIMITIVES) == {
        "lines",
        "polygon",
        "multiple_polygons",
        "ellipses",
        "star",
        "checkerboard",
        "stripes",
        "cube",
        "gaussian_noise",
    }


def test_polygon_points_are_the_drawn_vertices() -> None:
    img = np.full((60, 80), 20.0, np.float32)
    pts = draw_polygon(img, np.random.default_rng(1), bg=20.0)
    assert len(pts) >= 3
    # Each vertex is on the shape's boundary: the 3x3 neighbourhood mixes shape and background.
    for x, y in np.round(pts).astype(int):
        patch = img[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
        assert patch.max() - patch.min() > 10
    # And the drawing's outer contour has its corners at these points (within 1 px).
    mask = (np.abs(img - 20.0) > 1).astype(np.uint8)
    contour = max(
        cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0], key=cv2.contourArea
    ).reshape(-1, 2)
    d = np.linalg.norm(pts[:, None] - contour[None], axis=2).min(axis=1)
    assert d.max() < 1.5


def corner_hits(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Per point: is the strongest Shi-Tomasi response within 2 px in the image's top 2 %?"""
    resp = cv2.cornerMinEigenVal(img.astype(np.float32), 3)
    local = maximum_filter(resp, 5)
    ix = np.round(pts).astype(int)
    return local[ix[:, 1], ix[:, 0]] > np.percentile(resp, 98)


def test_points_lie_on_detected_corners() -> None:
    rng = np.random.default_rng(0)
    for name in CORNER_PRIMITIVES:
        hits = np.concatenate(
            [corner_hits(*render_shapes(rng, 120, 160, [name])) for _ in range(8)]
        )
        assert len(hits) > 10 and hits.mean() > 0.85, name
    # A shifted copy of the points is NOT on corners: the check can fail.
    img, pts = render_shapes(np.random.default_rng(1), 120, 160, ["checkerboard"])
    shifted = np.clip(pts + np.array([6.0, 5.0]), 0, [159, 119])
    assert corner_hits(img, shifted).mean() < 0.5


def test_points_survive_the_homography_warp() -> None:
    rng = np.random.default_rng(3)
    img, pts = render_shapes(rng, 120, 160, ["checkerboard"])
    H = sample_homography(1, 120, 160, HomographyConfig(), torch.Generator().manual_seed(1))[0]
    warped, mask, wpts = warp_sample(img, pts, H.double().numpy(), margin=3)
    expected = warp_points(torch.from_numpy(pts)[None], H[None])[0].numpy()
    # Every kept point is a warped GT point, and warped corners still look like corners.
    assert len(wpts) > 0
    d = np.linalg.norm(wpts[:, None] - expected[None], axis=2).min(axis=1)
    assert d.max() < 1e-3
    assert corner_hits(warped, wpts).mean() > 0.8
    # The mask is the warped image's support: zero where the warp pulled in nothing.
    assert np.all(warped[mask == 0] <= 255) and mask.min() == 0 and mask.max() == 1


def test_dump_is_reproducible_and_refuses_non_empty(tmp_path: Path) -> None:
    dump_shapes(tmp_path / "a", num=6, seed=4, noise=True, workers=1)
    dump_shapes(tmp_path / "b", num=6, seed=4, noise=True, workers=2)
    for sub, ext in (("images", "png"), ("points", "npy")):
        files = sorted((tmp_path / "a" / sub).iterdir())
        assert [f.name for f in files] == [f"{i:06d}.{ext}" for i in range(6)]
        for f in files:
            assert f.read_bytes() == (tmp_path / "b" / sub / f.name).read_bytes()
    img = cv2.imread(str(tmp_path / "a/images/000000.png"), cv2.IMREAD_UNCHANGED)
    pts = np.load(tmp_path / "a/points/000000.npy")
    assert img.dtype == np.uint8 and img.shape == (120, 160) and pts.dtype == np.float32
    ref_img, ref_pts = SyntheticShapes("test", size=6, seed=4, photometric=PhotometricConfig()).raw(
        0
    )
    assert np.array_equal(img, ref_img) and np.array_equal(pts, ref_pts)
    with pytest.raises(ValueError, match="already holds images"):
        dump_shapes(tmp_path / "a", num=2, workers=1)


def test_opencv_sample_path_matches_batched_torch_warp() -> None:
    from pointforge.geometry.homography import valid_mask, warp_images

    img, pts = render_shapes(np.random.default_rng(5), 120, 160, ["cube"])
    H = sample_homography(1, 120, 160, HomographyConfig(), torch.Generator().manual_seed(2))
    cv_img, cv_mask, _ = warp_sample(img, pts, H[0].double().numpy(), margin=3)
    t_img = warp_images(torch.from_numpy(img).float()[None, None], H)[0, 0].numpy()
    t_mask = valid_mask(H, 120, 160, erode=3)[0, 0].numpy()
    both = (cv_mask > 0) & (t_mask > 0)
    assert both.sum() > 0.5 * (cv_mask > 0).sum()
    assert np.abs(cv_img[both] - t_img[both]).mean() < 1.0
    assert (cv_mask != t_mask).mean() < 0.01
