"""read_image refuses empty, truncated and undecodable files, naming them; complete files decode
exactly as OpenCV decodes them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.data.image_io import UnreadableImageError, check_complete, read_image


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h))
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, image, params or [])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    "ext,params",
    [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", [])],
)
def test_complete_files_decode_like_opencv(tmp_path: Path, ext: str, params: list[int]) -> None:
    data = _encode(ext, _photo(), params)
    path = tmp_path / f"a{ext}"
    # Trailing bytes after the end marker (padding, appended data) are allowed.
    path.write_bytes(data + b"\x00" * 7)
    colour = read_image(path)
    assert colour.shape == (48, 64, 3) and colour.dtype == np.uint8
    np.testing.assert_array_equal(colour, cv2.imdecode(np.frombuffer(data, np.uint8), 1))
    grey = read_image(str(path), grey=True)
    assert grey.shape == (48, 64)
    np.testing.assert_array_equal(grey, cv2.imdecode(np.frombuffer(data, np.uint8), 0))


@pytest.mark.parametrize(
    "ext,params",
    [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", [])],
)
def test_every_truncation_is_refused(tmp_path: Path, ext: str, params: list[int]) -> None:
    data = _encode(ext, _photo(), params)
    sig = 8 if ext == ".png" else 2  # shorter than the signature: not recognised, see below
    cuts = range(sig, len(data) - 1)  # drop at least the last 2 bytes (the end marker / CRC)
    assert all(check_complete(data[:c]) is not None for c in cuts)
    assert check_complete(data) is None
    for c in range(1, sig):  # a partial signature is left to the decoder, which refuses it
        with pytest.raises(UnreadableImageError, match="OpenCV can decode"):
            read_image_bytes(tmp_path, data[:c])


def test_truncated_jpeg_is_named_and_silent(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    # What cv2.imread accepts: the lower part of the picture is missing and comes back grey.
    data = _encode(".jpg", _photo(240, 320))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * 0.4)])
    assert cv2.imread(str(path)) is not None  # the silent acceptance this module exists for
    capfd.readouterr()
    with pytest.raises(UnreadableImageError, match=r"cut\.jpg: truncated.*FFD9") as err:
        read_image(path)
    assert err.value.path == path
    assert "Premature end" not in capfd.readouterr().err  # refused before libjpeg saw it


def test_thumbnail_end_marker_does_not_count(tmp_path: Path) -> None:
    """An EXIF-style thumbnail (a whole JPEG inside an APP1 segment) holds its own FFD9: a
    truncated main image with a complete thumbnail is still truncated."""
    thumb = _encode(".jpg", _photo(8, 8))
    main = _encode(".jpg", _photo())
    app1 = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    whole = main[:2] + app1 + main[2:]
    assert check_complete(whole) is None
    assert read_image_bytes(tmp_path, whole).shape == (48, 64, 3)
    assert "truncated" in (check_complete(whole[: len(whole) - 300]) or "")


def read_image_bytes(tmp_path: Path, data: bytes) -> np.ndarray:
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    return read_image(path)


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty file"),
        (b"this is text, not an image", "not an image OpenCV can decode"),
        (None, "no such file"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableImageError, match=f"bad\\.png: {reason}"):
        read_image(path)
    assert issubclass(UnreadableImageError, ValueError)


def test_check_image_file_is_cheap_and_names_truncation(tmp_path: Path) -> None:
    from pointforge.data.image_io import check_image_file

    image = np.random.default_rng(0).integers(0, 255, (32, 48, 3), np.uint8)
    for ext in (".jpg", ".png"):
        good = tmp_path / f"good{ext}"
        cv2.imwrite(str(good), image)
        check_image_file(good)
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
        with pytest.raises(UnreadableImageError, match="truncated") as info:
            check_image_file(cut)
        assert info.value.path == cut
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="empty"):
        check_image_file(tmp_path / "empty.jpg")
    with pytest.raises(UnreadableImageError, match="no such file"):
        check_image_file(tmp_path / "missing.png")


def test_error_pickles_for_dataloader_workers(tmp_path: Path) -> None:
    import pickle

    err = pickle.loads(pickle.dumps(UnreadableImageError(tmp_path / "x.jpg", "truncated JPEG")))
    assert err.path == tmp_path / "x.jpg" and err.reason == "truncated JPEG"
    assert "x.jpg" in str(err)
