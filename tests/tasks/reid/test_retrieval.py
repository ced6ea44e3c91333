"""Retrieval ranking, exclusions and the green/red strip, with a predictor whose answer is known."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.tasks.reid.retrieval import (
    BORDER,
    GREEN,
    GREY,
    RED,
    Identity,
    draw_strip,
    gallery_files,
    identity_of,
    rank_gallery,
)

# Identity → a grey level; the fake predictor embeds a crop by its level, so ranking is known.
LEVELS = {"1": 40, "2": 120, "3": 200}


class LevelPredictor:
    """Embeds a crop as a unit 2-vector at an angle given by its mean grey level: crops of
    close levels are close (cosine), equal levels identical."""

    def __call__(self, crops: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        items = [crops] if isinstance(crops, np.ndarray) else crops
        angles = np.array([float(c.mean()) / 255.0 * np.pi / 2 for c in items])
        return {"embeddings": np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)}


def write(path: Path, level: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((16, 8, 3), level, np.uint8))


def test_identity_from_names(tmp_path: Path) -> None:
    assert identity_of("x/0002_c1s1_000451_03.jpg") == Identity("2", "c1")
    assert identity_of("x/0005_c2_f0046985.jpg") == Identity("5", "c2")
    assert identity_of("x/-1_c3s1_000001_00.jpg") == Identity("-1", "c3")
    assert identity_of(tmp_path / "alice/cam1_07.jpg", tmp_path) == Identity("alice", "cam1")
    assert identity_of(tmp_path / "loose.png", tmp_path) == Identity(None, None)
    assert identity_of("q/bob/cam2_1.png") == Identity("bob", "cam2")


def test_rank_market_gallery_with_exclusions_and_frames(tmp_path: Path) -> None:
    gallery = tmp_path / "gallery"
    write(gallery / "0001_c2s1_000010_00.jpg", 40)  # same identity, other camera: a match
    write(gallery / "0001_c1s1_000020_00.jpg", 40)  # same identity, same camera: excluded
    write(gallery / "-1_c2s1_000030_00.jpg", 40)  # junk: excluded
    write(gallery / "0002_c2s1_000040_00.jpg", 120)
    write(gallery / "0003_c3s1_000050_00.jpg", 200)
    write(gallery / "0001_c3s1_000060_00.jpg", 50)  # a match, a little different
    query_path = tmp_path / "0001_c1s1_000001_00.jpg"
    write(query_path, 40)
    query = cv2.imread(str(query_path))
    files = gallery_files(gallery)
    result = rank_gallery(LevelPredictor(), query, query_path, files, gallery, top_k=3)
    assert [p.name for p in result["paths"]] == [
        "0001_c2s1_000010_00.jpg",
        "0001_c3s1_000060_00.jpg",
        "0002_c2s1_000040_00.jpg",
    ]
    assert result["correct"] == [True, True, False] and result["excluded"] == 2
    assert result["distances"][0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(result["distances"]) >= 0)

    strip = draw_strip(query, result["gallery_images"], result["distances"], result["correct"])
    cell = strip.shape[1] // 4  # query + 3 results, plus an 8 px gap
    starts = [0, *(8 + cell * i for i in (1, 2, 3))]
    width = (strip.shape[1] - 8) // 4
    assert cell >= width
    frames = [tuple(int(v) for v in strip[1, s + 1]) for s in starts[1:]]
    assert frames == [GREEN, GREEN, RED]
    assert tuple(int(v) for v in strip[BORDER + 5, starts[1] + BORDER + 5]) == (40, 40, 40)


def test_unknown_identities_are_grey_and_the_query_file_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "a.png", 40)
    write(tmp_path / "b.png", 200)
    query = cv2.imread(str(tmp_path / "a.png"))
    result = rank_gallery(
        LevelPredictor(), query, tmp_path / "a.png", gallery_files(tmp_path), tmp_path, 5
    )
    assert [p.name for p in result["paths"]] == ["b.png"] and result["correct"] == [None]
    strip = draw_strip(query, result["gallery_images"], result["distances"], result["correct"])
    assert tuple(int(v) for v in strip[1, -2]) == GREY
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no \.jpg"):
        gallery_files(tmp_path / "empty")
