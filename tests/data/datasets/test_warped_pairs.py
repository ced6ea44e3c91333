"""Warped-pair dataset on real photos with real exported labels: geometry and refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pointforge import MAGICPOINT_WEIGHTS
from pointforge.config import load_config
from pointforge.data.datasets.photo_folder import write_sample_photos
from pointforge.data.datasets.warped_pairs import WarpedPairs
from pointforge.data.label_shards import LabelStoreError
from pointforge.data.loader import collate
from pointforge.geometry.homography import HomographyConfig, warp_points
from pointforge.tasks.keypoints.export_labels import export_labels
from pointforge.tasks.keypoints.magicpoint import POINT_KEYS

SIZE = [96, 128]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("wp")
    photos = root / "photos"
    write_sample_photos(photos, ["camera", "coins", "astronaut"])
    overrides = [
        "task=magicpoint",
        "data.name=photo_folder",
        "device=cpu",
        f"data.image_size=[{SIZE[0]},{SIZE[1]}]",
        "adaptation.num_homographies=2",
        "adaptation.detection_threshold=0.001",
    ]
    export_labels(
        load_config(None, overrides), MAGICPOINT_WEIGHTS, photos, root / "labels", progress=False
    )
    return photos, root / "labels"


def test_sample_fields_and_geometry(labelled: tuple[Path, Path]) -> None:
    photos, labels = labelled
    torch.manual_seed(3)
    ds = WarpedPairs(photos, labels, SIZE, homographic=HomographyConfig(allow_artifacts=False))
    assert len(ds) == 3
    camera = [ds.photos.relative_path(i) for i in ds.indices].index("camera.png")
    s = ds[camera]
    assert s["image"].shape == s["warped_image"].shape == (1, *SIZE)
    assert s["valid_mask"].shape == s["warped_valid_mask"].shape == (1, *SIZE)
    assert s["homography"].shape == (3, 3) and s["homography"].dtype == torch.float32
    assert len(s["points"]) > 5  # camera.png has corners even at 96x128
    # Every warped label is a label of A moved by H.
    moved = warp_points(s["points"][None].double(), s["homography"][None].double())[0]
    dist = torch.cdist(s["warped_points"].double(), moved)
    assert len(s["warped_points"]) > 0 and dist.min(dim=1).values.max() < 1e-3
    # Without photometric noise, B is A warped by H (OpenCV, same convention).
    a = (s["image"][0].numpy() * 255).round().astype(np.uint8)
    expected = cv2.warpPerspective(a, s["homography"].double().numpy(), (SIZE[1], SIZE[0]))
    inside = s["warped_valid_mask"][0].numpy() > 0
    got = (s["warped_image"][0].numpy() * 255).round()
    assert np.abs(got[inside] - expected[inside]).max() <= 1


def test_samples_follow_the_global_rng_and_collate(labelled: tuple[Path, Path]) -> None:
    photos, labels = labelled
    ds = WarpedPairs(photos, labels, SIZE, homographic=HomographyConfig())
    torch.manual_seed(0)
    np.random.seed(0)
    first = ds[1]
    torch.manual_seed(0)
    np.random.seed(0)
    again = ds[1]
    assert torch.equal(first["homography"], again["homography"])
    batch = collate([ds[0], ds[1]], as_list=POINT_KEYS)
    assert batch["image"].shape == (2, 1, *SIZE)
    assert isinstance(batch["points"], list) and isinstance(batch["warped_points"], list)


def test_refuses_labels_of_another_size(labelled: tuple[Path, Path]) -> None:
    photos, labels = labelled
    with pytest.raises(LabelStoreError, match=r"size \[96, 128\].*\[64, 80\]"):
        WarpedPairs(photos, labels, (64, 80))


def test_refuses_photos_without_labels(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    photos, labels = labelled
    extra = tmp_path / "photos"
    shutil.copytree(photos, extra)
    write_sample_photos(extra, ["brick"])
    with pytest.raises(LabelStoreError, match=r"brick\.png"):
        WarpedPairs(extra, labels, SIZE)


def test_refuses_an_unfinished_export(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    photos, labels = labelled
    broken = tmp_path / "labels"
    shutil.copytree(labels, broken)
    manifest = broken / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"complete":true', '"complete":false'))
    with pytest.raises(LabelStoreError, match="--resume"):
        WarpedPairs(photos, broken, SIZE)


def test_label_threshold_keeps_the_confident_labels(labelled: tuple[Path, Path]) -> None:
    photos, labels = labelled
    all_ds = WarpedPairs(photos, labels, SIZE, homographic=None)
    camera = [all_ds.photos.relative_path(i) for i in all_ds.indices].index("camera.png")
    stored = all_ds.store["camera.png"]
    threshold = float(np.median(stored.scores))
    kept = WarpedPairs(photos, labels, SIZE, homographic=None, label_threshold=threshold)
    _, every = all_ds._photo(camera)
    _, strong = kept._photo(camera)
    expected = np.asarray(stored.keypoints)[np.asarray(stored.scores) >= threshold]
    assert 0 < len(strong) < len(every)
    np.testing.assert_array_equal(strong, expected)
