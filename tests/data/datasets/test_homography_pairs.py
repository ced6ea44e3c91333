"""Per-image rescaling of H, the generated benchmark's reproducibility, the HPatches reader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.data.datasets.homography_pairs import (
    GeneratedPairs,
    HomographyPair,
    resize_pair,
    scale_matrix,
)
from pointforge.data.datasets.hpatches import HPatches
from pointforge.data.image_io import UnreadableImageError


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture (uint8), so bilinear resampling is accurate."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(h // 8 + 2, w // 8 + 2)).astype(np.float32)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def _apply(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    return p[:, :2] / p[:, 2:]


def test_scale_matrix_hand_case() -> None:
    # 100×200 → 60×120: s = 0.6 in both axes, x' = 0.6 (x + ½) − ½.
    s = scale_matrix((100, 200), (60, 120))
    assert _apply(s, np.array([[0.0, 0.0], [199.0, 99.0]])) == pytest.approx(
        np.array([[-0.2, -0.2], [119.2, 59.2]])
    )


def test_resize_pair_uses_each_images_own_scale() -> None:
    # Image 1 is 100×200, image 2 is 50×80: different scale factors per image and per axis.
    H = np.array([[0.4, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    pair = HomographyPair("p", "v", np.zeros((100, 200), np.uint8), np.zeros((50, 80), np.uint8), H)
    out = resize_pair(pair, (60, 120))
    assert out.image1.shape == (60, 120) and out.image2.shape == (60, 120)
    # Hand-computed: (100, 50) in image 1 ↦ (40, 25) in image 2. Resized: image 1 has s=0.6,
    # → (59.8, 29.8); image 2 has sx=1.5, sy=1.2 → (60.25, 30.1).
    assert _apply(out.H, np.array([[59.8, 29.8]])) == pytest.approx(np.array([[60.25, 30.1]]))
    # The pytorch-superpoint bug (image 1's factors for both sides) misses by ~20 px here.
    s1 = scale_matrix((100, 200), (60, 120))
    buggy = s1 @ H @ np.linalg.inv(s1)
    assert np.abs(_apply(buggy, np.array([[59.8, 29.8]])) - [60.25, 30.1]).max() > 10


def test_resized_h_aligns_real_image_content() -> None:
    """Warp a texture into a differently sized image, resize both, and check H' aligns them."""
    img1 = _texture(120, 200, seed=1)
    H = np.array([[0.7, 0.05, 6.0], [-0.04, 0.6, 3.0], [2e-4, 1e-4, 1.0]])
    img2 = cv2.warpPerspective(img1, H, (150, 90), flags=cv2.INTER_LINEAR)
    out = resize_pair(HomographyPair("p", "v", img1, img2, H), (64, 96))
    pred = cv2.warpPerspective(out.image1, out.H, (96, 64), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full_like(out.image1, 255), out.H, (96, 64)) == 255
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    err = np.abs(pred.astype(float) - out.image2.astype(float))[mask].mean()
    assert mask.sum() > 1000 and err < 4.0
    s1 = scale_matrix(img1.shape, (64, 96))  # the one-scale bug is visibly misaligned
    bad = cv2.warpPerspective(out.image1, s1 @ H @ np.linalg.inv(s1), (96, 64))
    assert np.abs(bad.astype(float) - out.image2.astype(float))[mask].mean() > 3 * err


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(2):
        cv2.imwrite(str(d / f"im{i}.png"), _texture(90, 130, seed=i))
    (d / "notes.txt").write_text("not an image")
    return d


def test_generated_pairs_reproducible_and_consistent(photo_dir: Path) -> None:
    ds = GeneratedPairs(photo_dir, image_size=(64, 96), pairs_per_image=2, seed=3)
    assert len(ds) == 8
    again = GeneratedPairs(photo_dir, image_size=(64, 96), pairs_per_image=2, seed=3)
    other = GeneratedPairs(photo_dir, image_size=(64, 96), pairs_per_image=2, seed=4)
    for i in (5, 0, 2, 7):  # any order gives the same pairs
        a, b = ds[i], again[i]
        assert a.name == b.name and np.array_equal(a.image2, b.image2) and np.allclose(a.H, b.H)
    assert not np.array_equal(ds[2].image2, other[2].image2)
    assert [p.split for p in (ds[0], ds[2])] == ["illumination", "viewpoint"]
    illum, view = ds[0], ds[2]
    assert np.array_equal(illum.H, np.eye(3)) and not np.array_equal(illum.image1, illum.image2)
    assert not np.allclose(view.H, np.eye(3), atol=1e-3)
    # Viewpoint: image 2 is image 1 warped by H (no black border: allow_artifacts=False).
    pred = cv2.warpPerspective(view.image1, view.H, (96, 64), flags=cv2.INTER_LINEAR)
    inner = (slice(4, -4), slice(4, -4))
    err = np.abs(pred[inner].astype(float) - view.image2[inner].astype(float)).mean()
    assert err < 3.0 and view.image2[inner].min() > 0


def test_generated_pairs_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data\.path"):
        GeneratedPairs(tmp_path / "missing")
    with pytest.raises(ValueError, match="no images"):
        GeneratedPairs(tmp_path)


def _write_hpatches(root: Path) -> Path:
    base = root / "hpatches-sequences-release"
    for seq, size in (("i_ajuntament", (40, 60)), ("v_boat", (50, 70))):
        d = base / seq
        d.mkdir(parents=True)
        for k in range(1, 7):
            # HPatches images are colour PPMs.
            cv2.imwrite(
                str(d / f"{k}.ppm"), cv2.cvtColor(_texture(*size, seed=k), cv2.COLOR_GRAY2BGR)
            )
            if k > 1:
                np.savetxt(d / f"H_1_{k}", np.diag([1.0, 1.0, 1.0]) + np.eye(3, k=2) * k)
    return base


def test_hpatches_reader_pairs_splits_and_resize(tmp_path: Path) -> None:
    base = _write_hpatches(tmp_path)
    ds = HPatches(tmp_path, image_size=(32, 48))  # the parent folder works too
    assert len(ds) == 10
    p = ds[7]  # v_boat, pair 1 → 4
    assert (p.name, p.split) == ("v_boat/1-4", "v") and p.image1.shape == (32, 48)
    # H_1_4 translates x by 4 px at 50×70; resized to 32×48 the shift is 4 × 48/70.
    assert p.H[0, 2] == pytest.approx(4 * 48 / 70) and p.H[0, 0] == pytest.approx(1.0)
    assert HPatches(base, splits=("i",))[4].name == "i_ajuntament/1-6"
    assert HPatches(base)[0].image1.shape == (40, 60)  # no resize: original size


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda b: (b / "v_boat" / "H_1_3").unlink(), "v_boat: missing file H_1_3"),
        (lambda b: (b / "i_ajuntament" / "5.ppm").unlink(), "i_ajuntament: missing file 5.ppm"),
        (lambda b: (b / "v_boat" / "H_1_2").write_text("1 2\n3 4\n"), "v_boat: .*H_1_2"),
        (lambda b: (b / "v_boat" / "H_1_6").write_text("a b c\n"), "v_boat: cannot parse H_1_6"),
    ],
)
def test_hpatches_errors_name_sequence_and_file(tmp_path: Path, breakage, message: str) -> None:
    base = _write_hpatches(tmp_path)
    breakage(base)
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        HPatches(base)


def test_hpatches_missing_folder_and_unreadable_image(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HPatches(tmp_path / "nope")
    base = _write_hpatches(tmp_path)
    (base / "v_boat" / "2.ppm").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"v_boat/2\.ppm: .*HPatches sequence v_boat"):
        HPatches(base)[5]


def test_truncated_source_photo_is_refused_by_name(photo_dir: Path) -> None:
    """A JPEG cut short decodes in OpenCV with its lower part grey; a benchmark built on it
    would score a fake edge. It must be refused, naming the file."""
    jpeg = cv2.imencode(".jpg", _texture(90, 130, seed=5))[1].tobytes()
    (photo_dir / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(UnreadableImageError, match=r"cut\.jpg: truncated.*data\.path") as err:
        GeneratedPairs(photo_dir, image_size=(64, 96), pairs_per_image=1)
    assert err.value.path == photo_dir / "cut.jpg"


def test_hpatches_unreadable_image_names_sequence_and_file(tmp_path: Path) -> None:
    base = _write_hpatches(tmp_path)
    bad = base / "v_boat" / "3.ppm"
    bad.write_bytes(bad.read_bytes()[:100])
    ds = HPatches(base)
    with pytest.raises(UnreadableImageError, match=r"3\.ppm: .*HPatches sequence v_boat") as err:
        ds[6]  # v_boat 1 -> 3
    assert err.value.path == bad
