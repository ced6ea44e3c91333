"""Image folders read with OpenCV: class ids, colour order, both layouts, named errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pointforge.data.datasets.image_folder import ImageFolderDataset, ImageFolderError


def write_tree(root: Path, per_class: dict[str, int], size: int = 6) -> None:
    """``per_class[name]`` PNGs of ``size``² pixels; class k's images are grey value 40 * k."""
    for k, (name, count) in enumerate(sorted(per_class.items())):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((size, size), 40 * k, np.uint8))


def test_one_tree_split_is_stratified_and_disjoint(tmp_path: Path) -> None:
    write_tree(tmp_path, {"cat": 10, "ant": 5, "bee": 4})
    train = ImageFolderDataset(tmp_path, "train", val_fraction=0.2)
    val = ImageFolderDataset(tmp_path, "val", val_fraction=0.2)
    assert train.classes == ["ant", "bee", "cat"] and train.num_classes == 3
    assert set(train.paths).isdisjoint(val.paths) and len(train) + len(val) == 19
    assert np.bincount(val.labels, minlength=3).tolist() == [1, 1, 2]
    for ds in (train, val):
        for i in range(len(ds)):
            item = ds[i]
            assert item["image"].shape == (1, 6, 6) and item["image"].dtype == torch.uint8
            assert ds.paths[i].parent.name == ds.classes[item["label"]]
            assert int(item["image"][0, 0, 0]) == 40 * item["label"]
    again = ImageFolderDataset(tmp_path, "val", val_fraction=0.2)
    assert again.paths == val.paths


def test_colour_images_come_out_rgb(tmp_path: Path) -> None:
    (tmp_path / "red").mkdir()
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200  # OpenCV stores BGR: this is pure red
    cv2.imwrite(str(tmp_path / "red" / "a.png"), bgr)
    cv2.imwrite(str(tmp_path / "red" / "b.jpg"), bgr)
    image = ImageFolderDataset(tmp_path, "train")[0]["image"]
    assert image.shape == (3, 4, 5)
    assert image[0].float().mean() > 150 and image[1:].float().mean() < 30


def test_train_val_layout_is_used_as_is(tmp_path: Path) -> None:
    write_tree(tmp_path / "train", {"a": 3, "b": 2, "c": 2})
    write_tree(tmp_path / "val", {"a": 1, "c": 2})  # val lacks class b
    train = ImageFolderDataset(tmp_path, "train", val_fraction=0.5)
    val = ImageFolderDataset(tmp_path, "val", val_fraction=0.5)
    assert len(train) == 7 and len(val) == 3
    assert val.classes == ["a", "b", "c"]
    assert sorted(val.labels.tolist()) == [0, 2, 2]  # ids follow train's class order


def test_missing_or_empty_folders_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ImageFolderError, match=f"image folder {missing} does not exist"):
        ImageFolderDataset(missing)
    with pytest.raises(ImageFolderError, match="has no class subfolders"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(ImageFolderError, match=f"no images .* in class folder.*{tmp_path / 'a'}"):
        ImageFolderDataset(tmp_path)
    with pytest.raises(ImageFolderError, match=r"needs data\.root"):
        ImageFolderDataset(None)
    write_tree(tmp_path / "x" / "train", {"a": 2})
    write_tree(tmp_path / "x" / "val", {"z": 1})
    with pytest.raises(ImageFolderError, match=r"classes missing from .*train: \['z'\]"):
        ImageFolderDataset(tmp_path / "x", "val")


def test_unreadable_image_is_reported_by_path(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a": 1})
    bad = tmp_path / "a" / "broken.png"
    bad.write_bytes(b"\x89PNG this is not a png")
    ds = next(
        d
        for d in map(lambda s: ImageFolderDataset(tmp_path, s), ("train", "val"))
        if bad in d.paths
    )
    index = ds.paths.index(bad)
    with pytest.raises(OSError, match=f"cannot read image file {bad}"):
        ds[index]
