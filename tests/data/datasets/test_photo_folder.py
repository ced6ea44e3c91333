"""Photo folder: recursive sorted listing, grey + resize with scale factors, bad-image policy."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from pointforge.data.datasets.photo_folder import (
    BadImageError,
    PhotoFolder,
    collate_photos,
    write_sample_photos,
)


def test_lists_recursively_sorted_and_resizes_to_grey(tmp_path):
    write_sample_photos(tmp_path / "b", ["camera"])
    colour = np.zeros((60, 90, 3), np.uint8)
    colour[..., 2] = 200  # pure red in BGR
    (tmp_path / "a" / "deep").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "a" / "deep" / "red.BMP"), colour)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = PhotoFolder(tmp_path, (48, 64))
    assert [ds.relative_path(i) for i in range(len(ds))] == ["a/deep/red.BMP", "b/camera.png"]
    red, camera = ds[0], ds[1]
    assert red.image.shape == (1, 48, 64) and red.orig_size == (60, 90)
    assert red.scale == pytest.approx((64 / 90, 48 / 60))
    grey = cv2.cvtColor(colour[:1, :1], cv2.COLOR_BGR2GRAY)[0, 0] / 255
    assert float(red.image.mean()) == pytest.approx(grey, abs=1 / 255)
    assert camera.orig_size == (512, 512) and camera.scale == (64 / 512, 48 / 512)
    assert 0.0 <= float(camera.image.min()) < float(camera.image.max()) <= 1.0


def test_bad_image_error_names_the_file(tmp_path):
    write_sample_photos(tmp_path, ["coins"])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    ds = PhotoFolder(tmp_path, (32, 32))
    with pytest.raises(BadImageError, match=r"broken\.jpg.*on_bad_image=skip"):
        ds[0]


def test_truncated_photo_is_a_bad_image(tmp_path, caplog):
    """A JPEG cut short decodes in OpenCV (the missing part comes back grey): it must be refused
    under ``error`` and dropped with a warning naming it under ``skip``."""
    write_sample_photos(tmp_path, ["coins"])
    jpeg = cv2.imencode(".jpg", cv2.imread(str(tmp_path / "coins.png")))[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    assert [PhotoFolder(tmp_path).relative_path(i) for i in (0, 1)] == ["coins.png", "cut.jpg"]
    with pytest.raises(BadImageError, match=r"cut\.jpg: truncated.*on_bad_image=skip"):
        PhotoFolder(tmp_path, (32, 32))[1]
    ds = PhotoFolder(tmp_path, (32, 32), on_bad_image="skip")
    with caplog.at_level("WARNING", logger="pointforge"):
        assert ds[1] is None
    assert "cut.jpg: truncated" in caplog.text


def test_bad_image_skip_policy_drops_and_warns(tmp_path, caplog):
    write_sample_photos(tmp_path, ["coins"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    ds = PhotoFolder(tmp_path, (32, 32), on_bad_image="skip")
    with caplog.at_level("WARNING", logger="pointforge"):
        kept, batch = collate_photos([ds[0], ds[1]])
    assert [p.path for p in kept] == ["coins.png"] and batch.shape == (1, 1, 32, 32)
    assert "broken.png" in caplog.text


def test_empty_or_missing_folder_is_a_named_error(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.md").write_text("x")
    with pytest.raises(BadImageError, match=f"{tmp_path}.*no images"):
        PhotoFolder(tmp_path)
    with pytest.raises(BadImageError, match="does not exist"):
        PhotoFolder(tmp_path / "nope")
    with pytest.raises(ValueError, match="on_bad_image"):
        PhotoFolder(tmp_path, on_bad_image="ignore")


def test_every_dataset_is_a_valid_data_name_in_a_fresh_process() -> None:
    # A fresh interpreter: registration must not depend on which module a test imported first.
    code = (
        "from pointforge.config import load_config\n"
        "pairs = [('magicpoint', 'photo_folder'), ('homography_eval', 'hpatches'),\n"
        "         ('homography_eval', 'homography_pairs'), ('classification', 'digits')]\n"
        "for task, name in pairs:\n"
        "    over = [f'task={task}', f'data.name={name}', 'data.path=x']\n"
        "    over = over if name == 'hpatches' else over[:2]\n"
        "    assert load_config(None, over).data.name == name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
