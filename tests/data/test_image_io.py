"""read_image / check_image_file: decode, and refuse missing, empty and truncated files."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.data.image_io import UnreadableImageError, check_image_file, read_image


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (64, 48))
    cv2.rectangle(img, (10, 10), (30, 40), (0, 0, 255), -1)
    return img


def test_reads_colour_and_grey(tmp_path: Path) -> None:
    img = _photo()
    cv2.imwrite(str(tmp_path / "a.png"), img)
    bgr = read_image(tmp_path / "a.png")
    assert bgr.dtype == np.uint8 and bgr.shape == (48, 64, 3)
    np.testing.assert_array_equal(bgr, img)  # PNG is lossless
    grey = read_image(str(tmp_path / "a.png"), grey=True)
    assert grey.shape == (48, 64)
    # libpng's grey conversion rounds differently from cvtColor by at most one level.
    ref = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(grey.astype(int) - ref).max() <= 1


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_file_is_refused(tmp_path: Path, ext: str) -> None:
    _, enc = cv2.imencode(ext, _photo())
    data = enc.tobytes()
    whole, cut = tmp_path / f"whole{ext}", tmp_path / f"cut{ext}"
    whole.write_bytes(data)
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert read_image(whole).shape == (48, 64, 3)
    check_image_file(whole)
    if ext == ".jpg":
        # The reason for the check: OpenCV decodes a truncated JPEG without complaint.
        assert cv2.imread(str(cut)) is not None
    for fn in (read_image, check_image_file):
        with pytest.raises(UnreadableImageError, match="truncated") as info:
            fn(cut)
        assert info.value.path == str(cut)
        assert isinstance(info.value, ValueError)


def test_trailing_padding_is_accepted(tmp_path: Path) -> None:
    for ext in (".jpg", ".png"):
        _, enc = cv2.imencode(ext, _photo())
        p = tmp_path / f"padded{ext}"
        p.write_bytes(enc.tobytes() + b"\x00" * 100 + b"\r\n")
        check_image_file(p)
        assert read_image(p).shape == (48, 64, 3)


def test_missing_empty_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImageError, match="does not exist"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(UnreadableImageError, match="does not exist"):
        check_image_file(tmp_path / "nope.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    with pytest.raises(UnreadableImageError, match="cannot decode"):
        read_image(tmp_path / "text.png")


def test_error_pickles_for_dataloader_workers(tmp_path: Path) -> None:
    err = pickle.loads(pickle.dumps(UnreadableImageError(tmp_path / "x.jpg", "truncated JPEG")))
    assert err.path == str(tmp_path / "x.jpg") and err.reason == "truncated JPEG"
