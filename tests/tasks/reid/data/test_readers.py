from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pointforge.data.image_io import UnreadableImageError
from pointforge.tasks.reid.data.image_set import QueryGallerySet
from pointforge.tasks.reid.data.readers import (
    ReIDFolderParams,
    ReIDFormatError,
    dukemtmc,
    generic_reid,
    market1501,
)


def write(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 4, 3), value, np.uint8))


def market(root: Path) -> Path:
    for name in ("0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s2_000010_01.jpg",
                 "-1_c1s1_000001_00.jpg"):  # fmt: skip
        write(root / "bounding_box_train" / name)
    (root / "bounding_box_train" / "Thumbs.db").write_bytes(b"not an image")
    write(root / "query" / "0005_c1s1_000100_00.jpg")
    for name in ("0005_c2s1_000200_00.jpg", "-1_c1s1_000002_00.jpg", "0000_c4s1_000003_00.jpg"):
        write(root / "bounding_box_test" / name)
    return root


def test_market_splits(tmp_path: Path) -> None:
    params = ReIDFolderParams(root=str(market(tmp_path)))
    train = market1501("train", params)
    assert train.pids.tolist() == [0, 0, 1]  # junk dropped, 2 → 0, 7 → 1
    assert train.camids.tolist() == [0, 1, 2]  # cameras 1..3 → 0..2
    assert train.num_classes == 2 and train.num_junk_dropped == 1
    gallery = market1501("gallery", params)
    assert sorted(gallery.pids.tolist()) == [-1, 0, 5]  # junk and distractor kept
    item = gallery[0]
    assert item["image"].shape == (3, 8, 4) and item["image"].dtype == torch.float32
    assert item["pid"].dtype == torch.int64 and item["camid"].dtype == torch.int64
    both = QueryGallerySet(market1501("query", params), gallery)
    assert len(both) == 4 and both[0]["is_query"] and not both[1]["is_query"]
    assert both[2]["index"] == 2


def test_bad_name_is_named(tmp_path: Path) -> None:
    root = market(tmp_path)
    write(root / "query" / "0005_cam1_000100.jpg")
    with pytest.raises(ReIDFormatError, match=re.escape("0005_cam1_000100.jpg")):
        market1501("query", ReIDFolderParams(root=str(root)))
    with pytest.raises(ValueError, match=re.escape("data.root")):
        market1501("query", ReIDFolderParams())


def test_unreadable_image_error_or_skip(tmp_path: Path) -> None:
    root = market(tmp_path)
    bad = root / "query" / "0009_c2s1_000100_00.jpg"
    bad.write_bytes(b"garbage")
    with pytest.raises(UnreadableImageError, match=re.escape("0009_c2s1_000100_00.jpg")):
        market1501("query", ReIDFolderParams(root=str(root)))
    skipped = market1501("query", ReIDFolderParams(root=str(root), on_bad_image="skip"))
    assert len(skipped) == 1 and skipped.skipped == [str(bad)]


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    """A JPEG cut short decodes to a half-grey picture in OpenCV; the reader refuses it."""
    root = market(tmp_path)
    good = root / "query" / "0009_c2s1_000100_00.jpg"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (128, 64, 3), np.uint8))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) * 3 // 4])
    assert cv2.imread(str(good)) is not None  # OpenCV alone would accept it
    with pytest.raises(UnreadableImageError, match="truncated JPEG"):
        market1501("query", ReIDFolderParams(root=str(root)))
    skipped = market1501("query", ReIDFolderParams(root=str(root), on_bad_image="skip"))
    assert skipped.skipped == [str(good)]


def test_duke(tmp_path: Path) -> None:
    write(tmp_path / "bounding_box_train" / "0005_c2_f0046985.jpg")
    write(tmp_path / "bounding_box_train" / "0011_c8_f0000001.jpg")
    train = dukemtmc("train", ReIDFolderParams(root=str(tmp_path)))
    assert train.pids.tolist() == [0, 1] and train.camids.tolist() == [1, 7]
    write(tmp_path / "bounding_box_train" / "0005_c2s1_000451_03.jpg")  # Market name
    with pytest.raises(ReIDFormatError, match=re.escape("0005_c2s1_000451_03.jpg")):
        dukemtmc("train", ReIDFolderParams(root=str(tmp_path)))


def test_generic_layout(tmp_path: Path) -> None:
    layout = [
        ("train", "bob", "camA_1.jpg"),
        ("train", "ann", "camB_x.png"),
        ("query", "zed", "camA_q.jpg"),
        ("gallery", "zed", "camB_1.jpg"),
        ("gallery", "amy", "camC_2.jpg"),
        ("gallery", "-1", "camA_j.jpg"),
    ]
    for split, ident, name in layout:
        write(tmp_path / split / ident / name)
    params = ReIDFolderParams(root=str(tmp_path))
    train = generic_reid("train", params)
    assert train.pids.tolist() == [0, 1]  # ann, bob
    assert train.camids.tolist() == [1, 0]  # camB, camA (cameras sorted over all splits)
    query, gallery = generic_reid("query", params), generic_reid("gallery", params)
    assert query.pids.tolist() == [1]  # amy=0, zed=1 over query ∪ gallery
    assert sorted(gallery.pids.tolist()) == [-1, 0, 1]
    os.remove(tmp_path / "query" / "zed" / "camA_q.jpg")
    write(tmp_path / "query" / "zed" / "nounderscore.jpg")
    with pytest.raises(ReIDFormatError, match=re.escape("nounderscore.jpg")):
        generic_reid("query", params)
