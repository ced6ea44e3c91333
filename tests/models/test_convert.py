"""MagicLeap v1 → pointforge conversion: key/shape table, named errors, identical predictions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

import pointforge
from pointforge.models.convert import MAGICLEAP_V1_TABLE, convert_magicleap
from pointforge.models.loading import WeightsError
from pointforge.models.superpoint import superpoint


@pytest.fixture(scope="module")
def v1_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A v1-format file: the bare state dict of a fresh superpoint (v1 names, no BatchNorm)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("v1") / "superpoint_v1.pth"
    torch.save(superpoint().state_dict(), path)
    return path


def test_table_matches_our_superpoint_model() -> None:
    own = superpoint().state_dict()
    assert {ours for ours, _ in MAGICLEAP_V1_TABLE.values()} == set(own)
    for ours, shape in MAGICLEAP_V1_TABLE.values():
        assert tuple(own[ours].shape) == shape
    n_params = sum(int(np.prod(s)) for _, s in MAGICLEAP_V1_TABLE.values())
    assert 1.2e6 < n_params < 1.4e6  # ~1.3 M parameters (docs/keypoints.md)


def test_convert_round_trips_to_identical_predictions(v1_file: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out" / "sp.pth"
    prov = convert_magicleap(v1_file, dst)
    assert prov["source_sha256"] == hashlib.sha256(v1_file.read_bytes()).hexdigest()
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt["provenance"] == prov and set(ckpt["model"]) == set(MAGICLEAP_V1_TABLE)

    image = cv2.resize(skdata.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    a = pointforge.load_predictor(v1_file, device="cpu", detection_threshold=0.0)(image)
    b = pointforge.load_predictor(dst, device="cpu", detection_threshold=0.0)(image)
    assert len(a["keypoints"]) > 50
    for key in ("keypoints", "scores", "descriptors"):
        assert np.array_equal(a[key], b[key]), key


def test_wrong_shape_is_named(v1_file: Path, tmp_path: Path) -> None:
    state = torch.load(v1_file, weights_only=True)
    state["convDb.weight"] = torch.zeros(128, 256, 1, 1)  # another descriptor size
    bad = tmp_path / "bad_shape.pth"
    torch.save(state, bad)
    with pytest.raises(WeightsError, match=r"bad_shape\.pth.*convDb\.weight \[128, 256, 1, 1\]"):
        convert_magicleap(bad, tmp_path / "dst.pth")
    assert not (tmp_path / "dst.pth").exists()


def test_missing_and_unexpected_keys_are_named(v1_file: Path, tmp_path: Path) -> None:
    state = torch.load(v1_file, weights_only=True)
    del state["convDa.weight"], state["convDa.bias"]
    state["bn1a.weight"] = torch.ones(64)
    bad = tmp_path / "detector_only.pth"
    torch.save(state, bad)
    with pytest.raises(
        WeightsError,
        match=r"detector_only\.pth.*missing keys: convDa\.weight, convDa\.bias; "
        r"unexpected keys: bn1a\.weight",
    ):
        convert_magicleap(bad, tmp_path / "dst.pth")


def test_not_a_state_dict_is_named(tmp_path: Path) -> None:
    ours = tmp_path / "ours.pth"
    torch.save({"model": superpoint().state_dict(), "format_version": 1}, ours)
    with pytest.raises(WeightsError, match=r"ours\.pth.*pointforge checkpoint already"):
        convert_magicleap(ours, tmp_path / "dst.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match=r"junk\.pth.*corrupt"):
        convert_magicleap(junk, tmp_path / "dst.pth")
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        convert_magicleap(tmp_path / "nope.pth", tmp_path / "dst.pth")
