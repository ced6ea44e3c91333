from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

import pointforge
from pointforge.models.superpoint import magicpoint, superpoint
from pointforge.tasks.keypoints.predictor import (
    KeypointPredictor,
    build_model_for_state_dict,
    load_state_dict_from_file,
)


@pytest.fixture(scope="module")
def sp_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "sp.pth"
    torch.save({"model": superpoint().state_dict()}, path)
    return path


def test_bgr_and_grey_give_the_same_keypoints(sp_weights: Path) -> None:
    pred = pointforge.load_predictor(sp_weights, device="cpu", detection_threshold=0.0)
    grey = skdata.camera()[::4, ::4].copy()  # (128, 128) real photo
    a = pred(grey)
    b = pred(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert np.array_equal(a["keypoints"], b["keypoints"]) and len(a["keypoints"]) > 0
    assert a["descriptors"].shape == (len(a["keypoints"]), 256)
    assert np.allclose(np.linalg.norm(a["descriptors"], axis=1), 1, atol=1e-5)
    assert np.all(np.diff(a["scores"]) <= 0)  # sorted descending


def test_odd_and_tiny_sizes_work(sp_weights: Path) -> None:
    pred = pointforge.load_predictor(sp_weights, device="cpu", detection_threshold=0.0, border=2)
    for h, w in [(101, 77), (9, 13)]:
        img = np.random.default_rng(0).integers(0, 255, (h, w), dtype=np.uint8)
        out = pred(img)
        k = out["keypoints"]
        assert np.all((k[:, 0] >= 2) & (k[:, 0] < w - 2) & (k[:, 1] >= 2) & (k[:, 1] < h - 2))


def test_detector_only_has_no_descriptors(tmp_path: Path) -> None:
    torch.save(magicpoint().state_dict(), tmp_path / "mp.pth")  # raw (v1-style) state dict
    out = pointforge.load_predictor(tmp_path / "mp.pth", device="cpu")(np.zeros((32, 32), np.uint8))
    assert out["descriptors"] is None and out["keypoints"].shape[1] == 2


def test_bad_weights_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"broken\.pth"):
        load_state_dict_from_file(bad)
    state = superpoint().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["convPb.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['convPb.bias'\].*unexpected.*extra"):
        build_model_for_state_dict(state)
    with pytest.raises(ValueError, match="uint8"):
        KeypointPredictor(magicpoint(), device="cpu")(np.zeros((8, 8), np.float32))


def test_ddp_prefix_is_stripped(tmp_path: Path) -> None:
    state = {f"module.{k}": v for k, v in magicpoint().state_dict().items()}
    torch.save({"model": state}, tmp_path / "ddp.pth")
    assert all(not k.startswith("module.") for k in load_state_dict_from_file(tmp_path / "ddp.pth"))
